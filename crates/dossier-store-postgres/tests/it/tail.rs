//! The events tail while several nodes write: each store here has its own pool, as a node
//! would, over one database.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::Utc;
use dossier_domain::event::EventType;
use dossier_store::{EventOrder, EventQuery, NewEvent, Store};
use dossier_store_postgres::{PostgresStore, Settings};

use crate::{backend, s1, Schema};

fn event(account: &str, message: String) -> NewEvent {
    NewEvent {
        account_id: account.to_owned(),
        event_type: EventType::StoryUpdated,
        at: Utc::now(),
        connector_id: None,
        story_id: None,
        incident_id: None,
        message,
        data: serde_json::json!({}),
    }
}

async fn open(url: &str) -> PostgresStore {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || PostgresStore::open(&url, s1(), &Settings::default()))
        .await
        .unwrap()
        .unwrap()
}

/// Three nodes write events, some in transactions held open while others commit (an event
/// numbered before others that commits after them); a reader tails by cursor all along. It
/// reads every event exactly once.
#[test]
fn a_tail_reads_every_event_of_three_nodes_exactly_once() {
    let Some(_) = backend() else { return };
    dossier_store::conformance::block_on(async {
        let schema = Schema::new();
        let url = schema.url();
        let nodes = [open(&url).await, open(&url).await, open(&url).await];
        let account = nodes[0]
            .create_account("Acme", dossier_domain::access::Licence::Xops)
            .await
            .unwrap()
            .id;
        let writing = Arc::new(AtomicBool::new(true));
        let per_node = 60;

        // A writer that holds its transaction open: it inserts an event, waits until the
        // others have committed some more, then commits. Its event's sequence number is lower
        // than theirs, but it commits after them.
        let late = {
            let (url, account) = (url.clone(), account.clone());
            std::thread::spawn(move || {
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let mut written = Vec::new();
                for round in 0..5 {
                    let mut tx = c.transaction().unwrap();
                    let message = format!("late-{round}");
                    tx.execute(
                        "INSERT INTO events (account_id, type, at, message, data)
                         VALUES ($1, 'story_updated', 0, $2, '{}')",
                        &[&account, &message],
                    )
                    .unwrap();
                    let mine: i64 = tx
                        .query_one(
                            "SELECT max(seq) FROM events WHERE message = $1",
                            &[&message],
                        )
                        .unwrap()
                        .get(0);
                    // Wait, on a connection of its own, until an event numbered after this
                    // one has committed.
                    let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                    loop {
                        let n: i64 = other
                            .query_one("SELECT count(*) FROM events WHERE seq > $1", &[&mine])
                            .unwrap()
                            .get(0);
                        if n > 0 {
                            break;
                        }
                        std::thread::yield_now();
                    }
                    tx.commit().unwrap();
                    written.push(message);
                }
                written
            })
        };

        let write = |node: usize| {
            let (store, account) = (nodes[node].clone(), account.clone());
            async move {
                for i in 0..per_node {
                    store
                        .insert_event(&event(&account, format!("n{node}-{i}")))
                        .await
                        .unwrap();
                    tokio::task::yield_now().await;
                }
            }
        };
        let reader = {
            let (store, account, writing) = (nodes[1].clone(), account.clone(), writing.clone());
            async move {
                let mut seen: Vec<String> = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let finished = !writing.load(Ordering::SeqCst);
                    let page = store
                        .list_events(&EventQuery {
                            account_id: Some(account.clone()),
                            order: EventOrder::Asc,
                            after: after.clone(),
                            limit: 7,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    let empty = page.items.is_empty();
                    seen.extend(page.items.into_iter().map(|e| e.message));
                    after = page.next_cursor;
                    if finished && empty {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            }
        };
        let writers = async {
            tokio::join!(write(0), write(1), write(2));
            let late = tokio::task::spawn_blocking(move || late.join().unwrap())
                .await
                .unwrap();
            writing.store(false, Ordering::SeqCst);
            late
        };
        let (seen, late) = tokio::join!(reader, writers);

        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for m in &seen {
            *counts.entry(m.as_str()).or_default() += 1;
        }
        let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "read more than once: {twice:?}");
        let mut expected: Vec<String> = (0..3)
            .flat_map(|n| (0..per_node).map(move |i| format!("n{n}-{i}")))
            .chain(late)
            .collect();
        expected.sort();
        let mut got = seen.clone();
        got.sort();
        assert_eq!(got, expected, "every event of every node, once");
    });
}
