//! Crash safety: the server is killed (SIGKILL) at random moments during a large ingest, 20
//! times, and restarted each time. In the end every threat is in exactly one incident, none is
//! lost or doubled, and the stories are those of an uninterrupted run.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use dossier_s1sim::{SimConfig, Tenant};
use rand::{Rng, SeedableRng};

const TOKEN: &str = "crash-test-token-81c2";
const KILLS: usize = 20;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dossier")
}

/// The one place that says which database the servers run on: every command of a server is
/// given the URL it makes. The checks read the SQLite file itself (`snapshot`, `wait_for`).
fn db_url(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

fn run(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    db: PathBuf,
    /// The URL of `db`, as every command of this server is given it.
    url: String,
    dir: PathBuf,
    port: u16,
    ca: PathBuf,
}

impl Server {
    fn spawn(&self) -> Child {
        let child = Command::new(bin())
            .args([
                "serve",
                "--db",
                &self.url,
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--allow-private-tenants",
                "--tenant-ca-file",
                self.ca.to_str().unwrap(),
                "--secret-key-file",
                self.dir.join("secret.key").to_str().unwrap(),
                // Two pages per commit: kills land both between commits and mid-batch.
                "--ingest-batch",
                "1500",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }
}

fn kill9(child: &mut Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

/// Sets up an account, a key and a connector to the tenant; returns the server description.
fn setup(root: &Path, name: &str, base_url: &str, ca_pem: &str) -> Server {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("dossier.db");
    let url = db_url(&db);
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let account = run(&[
        "account",
        "create",
        "--name",
        name,
        "--licence",
        "xops",
        "--db",
        &url,
    ]);
    let key = run(&[
        "api-key",
        "create",
        "--role",
        "integrations-editor",
        "--account",
        &account,
        "--db",
        &url,
    ]);
    let server = Server {
        db,
        url,
        dir,
        port: free_port(),
        ca,
    };
    let mut child = server.spawn();
    let body = serde_json::json!({"kind": "sentinelone", "name": "S1", "tenant_url": base_url, "api_token": TOKEN});
    let resp = ureq_post(server.port, &key, &body.to_string());
    assert!(resp.contains("\"status\":\"pending\""), "{resp}");
    // Leave the first server running for the caller? No: each phase starts its own.
    kill9(&mut child);
    server
}

/// A minimal blocking HTTP POST, to keep the test free of an async client.
fn ureq_post(port: u16, key: &str, body: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /api/v1/connectors HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// (story partition, per-story facts) read straight from the database.
type Snapshot = (
    BTreeSet<Vec<String>>,
    BTreeMap<Vec<String>, (i64, i64, i64, i64, String)>,
);

fn snapshot(db: &Path) -> (u64, u64, Snapshot) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let (n, distinct): (u64, u64) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT external_id) FROM incidents",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut st = conn
        .prepare("SELECT story_id, external_id FROM incidents ORDER BY external_id")
        .unwrap();
    let mut by_story: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (s, e) = row.unwrap();
        by_story.entry(s).or_default().push(e);
    }
    let mut facts = BTreeMap::new();
    let mut st = conn
        .prepare("SELECT incident_count, first_signal_at, last_signal_at, criticality, indication FROM stories WHERE id = ?1")
        .unwrap();
    for (id, members) in &by_story {
        let f = st
            .query_row([id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap_or_else(|e| panic!("story {id} of {members:?} has no row: {e}"));
        facts.insert(members.clone(), f);
    }
    let stories: i64 = conn
        .query_row("SELECT count(*) FROM stories", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        usize::try_from(stories).unwrap(),
        by_story.len(),
        "no story without incidents"
    );
    (n, distinct, (by_story.into_values().collect(), facts))
}

fn incident_count(db: &Path) -> u64 {
    rusqlite::Connection::open(db)
        .and_then(|c| c.query_row("SELECT count(*) FROM incidents", [], |r| r.get(0)))
        .unwrap_or(0)
}

fn wait_for(db: &Path, want: u64, latest: &BTreeMap<String, String>) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if db.exists() {
            let conn = rusqlite::Connection::open(db).unwrap();
            let n: u64 = conn
                .query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))
                .unwrap_or(0);
            if n >= want {
                // Every threat also carries its latest update.
                let mut st = conn
                    .prepare("SELECT i.external_id, b.raw FROM incidents i JOIN incident_bodies b ON b.seq = i.seq")
                    .unwrap();
                let stale = st
                    .query_map([], |r| {
                        let raw = dossier_store_sqlite::body::unpack(r.get_ref(1)?);
                        Ok((r.get::<_, String>(0)?, raw.unwrap()))
                    })
                    .unwrap()
                    .filter_map(Result::ok)
                    .filter(|(id, raw)| {
                        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
                        latest.get(id).map(String::as_str) != v["threatInfo"]["updatedAt"].as_str()
                    })
                    .count();
                if stale == 0 {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "ingest did not complete");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sigkill_during_ingest_loses_and_doubles_nothing() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tenant = Tenant::new(&SimConfig::new(99, 400, TOKEN));
    let now = Utc::now();
    tenant.generate_history(
        12_000,
        now - chrono::Duration::days(60),
        now - chrono::Duration::minutes(10),
    );
    let sim = rt
        .block_on(dossier_s1sim::start(
            tenant.clone(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    let root = tempfile::tempdir().unwrap();

    let crashy = setup(root.path(), "crashy", &sim.base_url, &sim.ca_pem);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut child = crashy.spawn();
    // Kills are timed in units of how long this machine takes from a start to a first commit,
    // so that they land mid-ingest on a slow machine (or a debug build) as on a fast one.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    while incident_count(&crashy.db) == 0 {
        assert!(
            Instant::now() < deadline,
            "the server never committed a page"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let unit = started.elapsed();
    eprintln!("first commit {unit:?} after start");
    let mut counts = Vec::new();
    for _ in 0..KILLS {
        // The tenant keeps changing while the server dies and comes back.
        for _ in 0..100 {
            tenant.generate_live(Utc::now());
        }
        let ids = tenant.all_ids();
        for _ in 0..30 {
            let id = &ids[rng.gen_range(0..ids.len())];
            tenant.update_threat(id, Utc::now());
        }
        std::thread::sleep(unit.mul_f64(rng.gen_range(0.1..1.5)));
        kill9(&mut child);
        counts.push(incident_count(&crashy.db));
        child = crashy.spawn();
    }
    eprintln!("incidents committed at each kill: {counts:?}");
    // The kills must land during the ingest, not after it.
    let mid = counts.iter().filter(|&&c| c > 0 && c < 12_000).count();
    assert!(
        mid >= KILLS / 2,
        "too few kills landed mid-ingest: {counts:?}"
    );
    let latest: BTreeMap<String, String> = tenant
        .all_ids()
        .into_iter()
        .map(|id| {
            let v = tenant.threat(&id).unwrap();
            (
                id,
                v["threatInfo"]["updatedAt"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let total = latest.len() as u64;
    wait_for(&crashy.db, total, &latest);
    kill9(&mut child);

    let calm = setup(root.path(), "calm", &sim.base_url, &sim.ca_pem);
    let mut child = calm.spawn();
    wait_for(&calm.db, total, &latest);
    kill9(&mut child);

    let (n, distinct, crashed) = snapshot(&crashy.db);
    assert_eq!(
        (n, distinct),
        (total, total),
        "every threat is exactly one incident"
    );
    let (_, _, reference) = snapshot(&calm.db);
    assert_eq!(
        crashed.0.len(),
        reference.0.len(),
        "as many stories as an uninterrupted run"
    );
    assert!(
        crashed.0 == reference.0,
        "the same incidents in the same stories"
    );
    assert!(crashed.1 == reference.1, "the same story facts");
    rt.block_on(sim.shutdown());
}
