//! The database's files (issue 27, item 11): the database, its WAL and its shared-memory
//! index are readable and writable by their owner only, whatever the umask.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use dossier_store::Store;
use dossier_store_sqlite::SqliteStore;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn files(db: &Path) -> [std::path::PathBuf; 3] {
    let side = |s: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(s);
        std::path::PathBuf::from(p)
    };
    [db.to_path_buf(), side("-wal"), side("-shm")]
}

#[tokio::test]
async fn the_database_and_its_wal_and_shm_are_created_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("new.db");
    let store = SqliteStore::open(db.to_str().unwrap(), crate::s1()).unwrap();
    store
        .create_account("acct", dossier_domain::access::Licence::Xops)
        .await
        .unwrap();
    for f in files(&db) {
        assert!(f.exists(), "{} exists while the store is open", f.display());
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    drop(store);
}

#[tokio::test]
async fn a_database_left_readable_by_others_is_made_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    drop(SqliteStore::open(db.to_str().unwrap(), crate::s1()).unwrap());
    for f in files(&db).iter().filter(|f| f.exists()) {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = SqliteStore::open(db.to_str().unwrap(), crate::s1()).unwrap();
    for f in files(&db).iter().filter(|f| f.exists()) {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    drop(store);
}
