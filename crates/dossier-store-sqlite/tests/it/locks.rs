//! The store never drops SQLite's own file locks. Closing any descriptor of a file drops every
//! POSIX lock its process holds on it; had the store opened and closed the `-shm` file after
//! its connections took their locks, another process (a CLI command beside the server) would
//! find the shared memory unused and start it afresh under the server's mapping: a SIGBUS in
//! the server, or a corrupt WAL index.

use std::process::Command;

use dossier_store_sqlite::SqliteStore;

/// Set in the child process this test starts: the `-shm` file to probe.
const PROBE: &str = "DOSSIER_SHM_LOCK_PROBE";

/// The byte of the `-shm` file that every SQLite connection using the shared memory holds a
/// read lock on (the unix VFS's "DMS" slot, after the 8 WAL locks at byte 120).
const DMS_BYTE: u64 = 128;

/// Exits 0 when another process holds a lock on the DMS byte of `shm`, 3 when none does.
fn probe(shm: &str) -> ! {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm)
        .unwrap();
    let want = rustix::process::Flock {
        start: DMS_BYTE,
        length: 1,
        pid: None,
        typ: rustix::process::FlockType::WriteLock,
        offset_type: rustix::process::FlockOffsetType::Set,
    };
    let holder = rustix::process::fcntl_getlk(&file, &want).unwrap();
    std::process::exit(if holder.is_some() { 0 } else { 3 });
}

#[test]
fn another_process_sees_the_store_using_its_shared_memory() {
    if let Ok(shm) = std::env::var(PROBE) {
        probe(&shm);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let db = db.to_str().unwrap();
    let first = SqliteStore::open(db, crate::s1()).unwrap();
    let shm = format!("{db}-shm");
    // Left looser by an earlier run: the next open brings it in line, and must not take the
    // first store's locks with it. A second open in one process is what a command beside the
    // server does in its own.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shm, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let second = SqliteStore::open(db, crate::s1()).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&shm).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the -shm is owner-only again");
    }
    let status = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "locks::another_process_sees_the_store_using_its_shared_memory",
            "--test-threads=1",
            "--quiet",
        ])
        .env(PROBE, &shm)
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "another process found the shared memory unused while the store had it open"
    );
    drop((first, second));
}
