#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The PostgreSQL backend's tests: the conformance suite every backend runs, against a real
//! server. Each store is a schema of its own in the test database, dropped when the test ends.
//!
//! The server is `DOSSIER_TEST_PG_URL`, or `postgres://postgres@127.0.0.1:5432/test`. Where no
//! server answers, each test prints a line starting with `SKIPPED` and passes; CI provides the
//! server and fails a run with such a line.

use std::sync::OnceLock;

use async_trait::async_trait;
use dossier_store::conformance::Backend;
use dossier_store::Remap;
use dossier_store_postgres::{PostgresStore, Settings};

/// The test database's URL.
pub fn pg_url() -> String {
    std::env::var("DOSSIER_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Fresh PostgreSQL stores, each a schema of its own.
pub struct PgBackend;

/// The backend, or `None` (said loudly) when no PostgreSQL server answers.
pub fn backend() -> Option<PgBackend> {
    static REACHABLE: OnceLock<bool> = OnceLock::new();
    let reachable = *REACHABLE.get_or_init(|| {
        match postgres::Client::connect(&pg_url(), postgres::NoTls) {
            Ok(_) => true,
            Err(e) => {
                println!(
                    "SKIPPED: the PostgreSQL store's tests: no server at {} ({e}); set DOSSIER_TEST_PG_URL",
                    pg_url()
                );
                false
            }
        }
    });
    if !reachable {
        println!("SKIPPED: a PostgreSQL store test: no server (see above)");
    }
    reachable.then_some(PgBackend)
}

/// A schema of the test database, dropped with everything in it when this is dropped.
pub struct Schema {
    pub name: String,
}

impl Schema {
    pub fn new() -> Self {
        use rand::Rng;
        let name = format!("t_{:016x}", rand::thread_rng().gen::<u64>());
        outside_runtime(&format!("CREATE SCHEMA {name}")).unwrap();
        Schema { name }
    }

    /// The URL of a store in this schema.
    pub fn url(&self) -> String {
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-c%20search_path%3D{}", self.name)
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = outside_runtime(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// Runs SQL on the test database from a thread of its own: the blocking client starts a
/// runtime of its own, which a thread already running one (an async test) may not.
pub fn outside_runtime(sql: &str) -> Result<(), postgres::Error> {
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&pg_url(), postgres::NoTls)?;
        c.batch_execute(&sql)
    })
    .join()
    .unwrap()
}

#[async_trait]
impl Backend for PgBackend {
    type Store = PostgresStore;
    type Guard = Schema;

    async fn fresh(&self, remap: Remap) -> (PostgresStore, Schema) {
        let schema = Schema::new();
        let url = schema.url();
        let store = tokio::task::spawn_blocking(move || {
            PostgresStore::open(&url, remap, &Settings::default())
        })
        .await
        .unwrap()
        .unwrap();
        (store, schema)
    }

    fn remap(&self) -> Remap {
        s1()
    }

    fn producer(&self) -> dossier_domain::Producer {
        dossier_sentinelone::producer()
    }
}

mod ingest;
mod leases;
mod migrations;
mod synthetic;
mod tail;

mod conformance {
    dossier_store::store_conformance_suite!(match crate::backend() {
        Some(b) => b,
        None => return,
    });
}

/// SentinelOne's mapping, the one every test incident here is stored with.
pub fn s1() -> Remap {
    std::sync::Arc::new(|p, raw| {
        (p == dossier_sentinelone::producer())
            .then(|| dossier_sentinelone::remap_stored(raw))
            .flatten()
    })
}
