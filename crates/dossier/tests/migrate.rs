//! `dossier migrate`: an installation built on SQLite (accounts, a user, API keys, a connector,
//! stories from ingested threats, comments, events) is copied into a fresh PostgreSQL schema;
//! the PostgreSQL store then reads the same stories, incidents, user, key and events (these
//! in commit order). An interrupted migration (stopped by its test flag, or killed) goes on
//! where it stopped and ends the same; a database that holds other data is refused.
//!
//! The server is `DOSSIER_TEST_PG_URL`, or `postgres://postgres@127.0.0.1:5432/test`. Where
//! none answers, each test prints a line starting with `SKIPPED` and passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use chrono::{Duration, Utc};
use dossier_store::conformance::{as_threat, incident, sha1, t0};
use dossier_store::{
    EventOrder, EventQuery, IngestPage, NewConnector, NewEvent, Remap, Store, StoryQuery,
};
use dossier_store_postgres::{PostgresStore, Settings};
use dossier_store_sqlite::SqliteStore;

use support::{dossier, ok, text, PgSchema};

/// Runs SQL on the test database from a thread of its own (the blocking client cannot run
/// inside a test's runtime).
fn sql(url: &str, sql: &str) -> Vec<postgres::Row> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query(&sql, &[]).unwrap()
    })
    .join()
    .unwrap()
}

/// SentinelOne's mapping, the one the test's threats are stored and read with.
fn s1() -> Remap {
    Arc::new(|p, raw| {
        (p == dossier_sentinelone::producer())
            .then(|| dossier_sentinelone::remap_stored(raw))
            .flatten()
    })
}

/// A SQLite installation with content of every kind.
struct Installation {
    _dir: tempfile::TempDir,
    url: String,
    account: String,
    key: String,
}

fn installation() -> Installation {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("dossier.db").display());
    let account = ok(&dossier(
        &[
            "account",
            "create",
            "--name",
            "Acme",
            "--licence",
            "xops",
            "--db",
            &url,
        ],
        None,
    ))
    .trim()
    .to_owned();
    let key = ok(&dossier(
        &[
            "api-key",
            "create",
            "--role",
            "admin",
            "--account",
            &account,
            "--name",
            "SOAR",
            "--db",
            &url,
        ],
        None,
    ))
    .trim()
    .to_owned();
    ok(&dossier(
        &[
            "user",
            "create",
            "--username",
            "alice",
            "--role",
            "stories-editor",
            "--account",
            &account,
            "--password-stdin",
            "--db",
            &url,
        ],
        Some("a long password of alice's\n"),
    ));
    ingest(&url, &account);
    Installation {
        _dir: dir,
        url,
        account,
        key,
    }
}

/// Stories from ingested threats (several pages, several devices and files, a story split by
/// a late incident), a comment, a user's setting and events.
fn ingest(url: &str, account: &str) {
    let url = url.to_owned();
    let account = account.to_owned();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let producer = dossier_sentinelone::producer();
            let store = SqliteStore::open(&url, s1()).unwrap();
            let connector = store
                .create_connector(&NewConnector {
                    account_id: account.clone(),
                    kind: "sentinelone".into(),
                    name: "Prod\ttabs\nand lines \\".into(),
                    description: Some("a description".into()),
                    tenant_url: "https://example.sentinelone.net".into(),
                    config: "{}".into(),
                    token_enc: vec![0, 1, 2, 0x5c, 0x0a, 0xff],
                    track_errors: true,
                    write_back: false,
                    response: false,
                    now: Utc::now(),
                })
                .await
                .unwrap();
            for page in 0..6u32 {
                let incidents = (0..10u32)
                    .map(|i| {
                        let n = page * 10 + i;
                        let mut inc = incident(
                            &format!("t{n}"),
                            i64::from(n % 7) - i64::from(page),
                            &format!("agent-{}", n % 4),
                            Some(&sha1(n % 5)),
                        );
                        inc.producer = producer;
                        let raw = as_threat(&inc);
                        let mut mapped = dossier_sentinelone::remap_stored(&raw).unwrap();
                        mapped.raw = raw;
                        mapped
                    })
                    .collect();
                store
                    .commit_page(IngestPage {
                        account_id: account.clone(),
                        connector_id: connector.id.clone(),
                        incidents,
                        checkpoint: format!("{{\"page\":{page}}}"),
                        now: t0() + Duration::days(10),
                        policy: dossier_domain::correlate::Policy::default(),
                        polls: u64::from(page) + 1,
                        generation: connector.generation,
                        events: Vec::new(),
                        status_detail: None,
                        shared_with: Vec::new(),
                    })
                    .await
                    .unwrap();
            }
            let stories = store
                .list_stories(&StoryQuery {
                    account_id: Some(account.clone()),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(stories.items.len() > 5, "{} stories", stories.items.len());
            let first = &stories.items[0].id;
            store
                .add_comment(
                    Some(&account),
                    first,
                    "alice",
                    "seen:\nit's \"bad\"",
                    Utc::now(),
                )
                .await
                .unwrap();
            let alice = store.find_user("alice").await.unwrap();
            store
                .set_user_setting(&alice.id, "columns", Some("[\"severity\"]"))
                .await
                .unwrap();
            for i in 0..12 {
                store
                    .insert_event(&NewEvent {
                        account_id: account.clone(),
                        event_type: dossier_domain::event::EventType::StoryUpdated,
                        at: Utc::now(),
                        connector_id: Some(connector.id.clone()),
                        story_id: Some(first.clone()),
                        incident_id: None,
                        message: format!("event {i}"),
                        data: serde_json::json!({"i": i}),
                    })
                    .await
                    .unwrap();
            }
        });
}

fn migrate(from: &str, to: &str, extra: &[&str]) -> Output {
    let mut args = vec!["migrate", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    dossier(&args, None)
}

/// Everything a reader sees of an installation, through its store: every story as listed and
/// in full (its incidents' raw JSON included), the user, the key, the connector, and every
/// event as a tail in commit order reads it.
async fn seen(store: &dyn Store, account: &str, key: &str) -> serde_json::Value {
    let mut stories = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_stories(&StoryQuery {
                account_id: Some(account.into()),
                limit: 7,
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        for s in &page.items {
            let d = store.get_story(Some(account), &s.id).await.unwrap();
            assert!(!d.incidents.is_empty());
            for i in &d.incidents {
                assert!(
                    i.raw.get().contains(&format!("\"id\":\"{}\"", i.id)),
                    "{}",
                    i.raw.get()
                );
            }
            let mut detail = serde_json::to_value(&d).unwrap();
            // Related stories that tie in their order come back in either order, whichever
            // the backend: compared as a set.
            if let Some(related) = detail["related"].as_array_mut() {
                related.sort_by_key(|r| r["id"].as_str().unwrap_or_default().to_owned());
            }
            stories.push(serde_json::json!({"listed": s, "detail": detail}));
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let user = store.find_user("alice").await.unwrap();
    let setting = store.user_setting(&user.id, "columns").await.unwrap();
    let found = store
        .find_api_key(&dossier_server::auth::hash_api_key(key))
        .await
        .unwrap();
    let connectors: Vec<_> = store
        .list_connectors(Some(account))
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.name, c.token_enc, c.checkpoint, c.polls))
        .collect();
    // A tail in commit order, from its start, page by page.
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_events(&EventQuery {
                order: EventOrder::Asc,
                after: after.clone(),
                limit: 5,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.items.is_empty() {
            break;
        }
        events.extend(page.items.iter().map(|e| {
            serde_json::json!([e.id, e.event_type.as_str(), e.message, e.data, e.story_id])
        }));
        after = page.next_cursor;
    }
    serde_json::json!({
        "stories": stories,
        "user": [user.id, user.username, user.password_hash, user.account_id],
        "setting": setting,
        "key": [found.id, found.account_id, found.name],
        "connectors": format!("{connectors:?}"),
        "events": events,
    })
}

/// What the SQLite installation and the PostgreSQL schema each show a reader.
fn both_seen(inst: &Installation, pg: &str) -> (serde_json::Value, serde_json::Value) {
    let (url, pg) = (inst.url.clone(), pg.to_owned());
    let (account, key) = (inst.account.clone(), inst.key.clone());
    // The PostgreSQL store's blocking client needs a thread outside any runtime to open.
    let postgres = std::thread::spawn(move || PostgresStore::open(&pg, s1(), &Settings::default()))
        .join()
        .unwrap()
        .unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let sqlite = SqliteStore::open(&url, s1()).unwrap();
            (
                seen(&sqlite, &account, &key).await,
                seen(&postgres, &account, &key).await,
            )
        })
}

/// Fails the test naming the first place where two readings differ.
fn assert_same(a: &serde_json::Value, b: &serde_json::Value) {
    fn walk(a: &serde_json::Value, b: &serde_json::Value, path: &str) {
        use serde_json::Value::{Array, Object};
        match (a, b) {
            (Object(x), Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    walk(
                        x.get(k).unwrap_or(&serde_json::Value::Null),
                        y.get(k).unwrap_or(&serde_json::Value::Null),
                        &format!("{path}.{k}"),
                    );
                }
            }
            (Array(x), Array(y)) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(p, q, &format!("{path}[{i}]"));
                }
            }
            _ => assert_eq!(a, b, "at {path}"),
        }
    }
    walk(a, b, "");
}

/// Event ids in the order a tail read them, which must be their SQLite order.
fn tail_ids(seen: &serde_json::Value) -> Vec<u64> {
    seen["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_str().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn an_installation_moves_to_postgres_and_reads_the_same() {
    let Some(base) = support::postgres("the migration test") else {
        return;
    };
    let inst = installation();
    let schema = PgSchema::new(&base, "migrate");
    let out = migrate(&inst.url, &schema.url(), &["--batch-rows", "7"]);
    let printed = ok(&out);
    for line in [
        "ok stories:",
        "ok incidents:",
        "ok incident_bodies:",
        "ok story ids: the same",
        "ok events: a tail in commit order",
        "secret key file",
    ] {
        assert!(printed.contains(line), "{line:?} in {printed}");
    }
    assert!(!printed.contains("DIFFERS"), "{printed}");

    let (sqlite, postgres) = both_seen(&inst, &schema.url());
    assert_same(&sqlite, &postgres);
    let ids = tail_ids(&postgres);
    assert!(ids.len() > 12, "{} events", ids.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // Run again, it finds everything copied and only compares.
    let again = ok(&migrate(&inst.url, &schema.url(), &[]));
    assert!(again.contains("ok story ids: the same"), "{again}");
    assert!(!again.lines().any(|l| l.starts_with("copied ")), "{again}");

    // New rows after the copied ones: the identity sequences were moved past them.
    let rows = sql(
        &schema.url(),
        "INSERT INTO timeline (story_id, at, kind, text) VALUES ('s', 0, 'k', 't') RETURNING seq",
    );
    let seq: i64 = rows[0].get(0);
    let max: i64 = sql(
        &schema.url(),
        "SELECT max(seq) FROM timeline WHERE story_id <> 's'",
    )
    .first()
    .and_then(|r| r.get::<_, Option<i64>>(0))
    .unwrap_or(0);
    assert!(seq > max, "{seq} after {max}");
    // A row written since is a difference the comparison names.
    let out = migrate(&inst.url, &schema.url(), &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("DIFFERS timeline: 1 rows in SQLite, 2 in PostgreSQL"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_interrupted_migration_goes_on_where_it_stopped() {
    let Some(base) = support::postgres("the resumed migration test") else {
        return;
    };
    let inst = installation();
    let schema = PgSchema::new(&base, "migrate");
    // Stopped three times, mid-table (batches of 7 rows, at least 40 rows a run).
    let mut stops = 0;
    loop {
        let out = migrate(
            &inst.url,
            &schema.url(),
            &["--batch-rows", "7", "--stop-after-rows", "40"],
        );
        if out.status.success() {
            break;
        }
        assert!(
            text(&out.stderr).contains("stopped after"),
            "{}",
            text(&out.stderr)
        );
        stops += 1;
        if stops == 3 {
            break;
        }
    }
    assert_eq!(stops, 3);
    let partial: Vec<(String, bool)> = sql(
        &schema.url(),
        "SELECT table_name, done FROM dossier_migration ORDER BY table_name",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert!(partial.iter().any(|(_, done)| !done), "{partial:?}");
    let printed = ok(&migrate(&inst.url, &schema.url(), &["--batch-rows", "7"]));
    assert!(!printed.contains("DIFFERS"), "{printed}");
    assert!(printed.contains("ok story ids: the same"), "{printed}");

    // The same as an uninterrupted copy (written with the other way of writing rows, which
    // must store the same).
    let straight = PgSchema::new(&base, "migrate");
    ok(&migrate(
        &inst.url,
        &straight.url(),
        &["--write-with", "insert"],
    ));
    let (sqlite, resumed) = both_seen(&inst, &schema.url());
    let (_, uninterrupted) = both_seen(&inst, &straight.url());
    assert_same(&sqlite, &resumed);
    assert_same(&resumed, &uninterrupted);
    let ids = tail_ids(&resumed);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[test]
fn a_database_holding_other_data_or_a_missing_file_is_refused() {
    let Some(base) = support::postgres("the migration refusal test") else {
        return;
    };
    let inst = installation();
    let schema = PgSchema::new(&base, "migrate");
    // Nodes already ran on it: an account of their own.
    ok(&dossier(
        &[
            "account",
            "create",
            "--name",
            "Other",
            "--licence",
            "none",
            "--db",
            &schema.url(),
        ],
        None,
    ));
    let out = migrate(&inst.url, &schema.url(), &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("already holds data") && err.contains("accounts"),
        "{err}"
    );
    let accounts = sql(&schema.url(), "SELECT count(*) FROM accounts");
    assert_eq!(accounts[0].get::<_, i64>(0), 1, "nothing was copied");

    let dir = tempfile::tempdir().unwrap();
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    let out = migrate(&missing, &PgSchema::new(&base, "migrate").url(), &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no SQLite database at"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !dir.path().join("none.db").exists(),
        "a missing database is not created"
    );

    // Another installation's migration is not resumed from this one.
    let other = installation();
    let target = PgSchema::new(&base, "migrate");
    ok(&migrate(&inst.url, &target.url(), &[]));
    let out = migrate(&other.url, &target.url(), &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("holds a migration from"),
        "{}",
        text(&out.stderr)
    );

    // A row of an older release that kept its normalised form but no raw JSON (ingest never
    // wrote one; a damaged or hand-edited database might hold one): copied, and named.
    let path = other.url.strip_prefix("sqlite://").unwrap();
    let seq: i64 = rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "UPDATE incident_bodies SET normalised = '{\"external_id\":\"t1\"}', raw = ''
             WHERE seq = (SELECT min(seq) FROM incident_bodies) RETURNING seq",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let fresh = PgSchema::new(&base, "migrate");
    let printed = ok(&migrate(&other.url, &fresh.url(), &[]));
    assert!(
        printed.contains(&format!(
            "warning: 1 incidents (seq {seq}) stored no raw JSON"
        )),
        "{printed}"
    );
    assert!(printed.contains("ok incident_bodies:"), "{printed}");
}

#[test]
fn a_migration_killed_mid_copy_ends_the_same_when_run_again() {
    use std::io::BufRead;
    let Some(base) = support::postgres("the killed migration test") else {
        return;
    };
    let inst = installation();
    let schema = PgSchema::new(&base, "migrate");
    // A batch a row: the kill lands inside a table's copy, between or inside transactions.
    let mut child = Command::new(env!("CARGO_BIN_EXE_dossier"))
        .args([
            "migrate",
            "--from",
            &inst.url,
            "--to",
            &schema.url(),
            "--batch-rows",
            "1",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        // The stories are all copied ("stories: 20 of 20 rows"): the kill lands in the tables
        // after them.
        let line = line.unwrap();
        let words: Vec<&str> = line.split(' ').collect();
        if words[0] == "stories:" && words.get(1) == words.get(3) {
            break;
        }
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    let left: Vec<(String, bool)> = sql(
        &schema.url(),
        "SELECT table_name, done FROM dossier_migration ORDER BY table_name",
    )
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    assert!(
        left.iter().any(|(t, done)| t == "stories" && *done),
        "{left:?}"
    );
    assert!(
        !left.iter().any(|(t, done)| t == "events" && *done),
        "{left:?}"
    );

    let printed = ok(&migrate(&inst.url, &schema.url(), &[]));
    assert!(!printed.contains("DIFFERS"), "{printed}");
    let (sqlite, postgres) = both_seen(&inst, &schema.url());
    assert_same(&sqlite, &postgres);
    let ids = tail_ids(&postgres);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}
