//! Nodes that start together on a new database take turns migrating it.

use dossier_store_postgres::{PostgresStore, Settings};

use crate::{backend, s1, Schema};

#[test]
fn nodes_starting_together_migrate_once() {
    let Some(_) = backend() else { return };
    let schema = Schema::new();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = schema.url();
            std::thread::spawn(move || PostgresStore::open(&url, s1(), &Settings::default()))
        })
        .collect();
    for node in opened {
        node.join().unwrap().unwrap();
    }
    let url = schema.url();
    let (version, rows, clock) = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let v: i64 = c
            .query_one("SELECT version FROM dossier_schema", &[])
            .unwrap()
            .get(0);
        let rows: i64 = c
            .query_one("SELECT count(*) FROM dossier_schema", &[])
            .unwrap()
            .get(0);
        let clock: i64 = c
            .query_one("SELECT count(*) FROM event_clock", &[])
            .unwrap()
            .get(0);
        (v, rows, clock)
    })
    .join()
    .unwrap();
    assert_eq!(
        (version, rows, clock),
        (4, 1, 1),
        "migrated once, to the latest"
    );
}
