#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The SQLite backend's tests: the conformance suite every backend runs, and the tests that need
//! SQLite itself (its file, its schema, its migrations).

mod files;
mod ingest;
mod locks;
mod stories;

use async_trait::async_trait;
use dossier_store::conformance::Backend;
use dossier_store::Remap;
use dossier_store_sqlite::SqliteStore;

/// Fresh SQLite stores, each a database file in a temporary directory of its own.
pub struct SqliteBackend;

#[async_trait]
impl Backend for SqliteBackend {
    type Store = SqliteStore;
    type Guard = tempfile::TempDir;

    async fn fresh(&self, remap: Remap) -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap(), remap).unwrap();
        (store, dir)
    }

    fn remap(&self) -> Remap {
        s1()
    }

    fn producer(&self) -> dossier_domain::Producer {
        dossier_sentinelone::producer()
    }
}

mod conformance {
    dossier_store::store_conformance_suite!(crate::SqliteBackend);
}

pub type Fixture = dossier_store::conformance::Fixture<SqliteBackend>;

/// SentinelOne's mapping, the one every test incident here is stored with.
pub fn s1() -> Remap {
    std::sync::Arc::new(|p, raw| {
        (p == dossier_sentinelone::producer())
            .then(|| dossier_sentinelone::remap_stored(raw))
            .flatten()
    })
}

pub async fn fixture() -> Fixture {
    Fixture::new(&SqliteBackend).await
}

/// The database file of a fixture.
pub fn path(f: &Fixture) -> std::path::PathBuf {
    f.guard.path().join("t.db")
}
