//! Crash safety: the server is killed (SIGKILL) at random moments during a large ingest, 20
//! times, and restarted each time. In the end every threat is in exactly one incident, none is
//! lost or doubled, and the stories are those of an uninterrupted run.
//!
//! The test knows no storage backend: the servers run on the database URL `db_url` makes, and
//! every check reads the stories and their incidents through the HTTP API. It runs on SQLite
//! and on PostgreSQL (`DOSSIER_TEST_PG_URL`, or the local server; it says `SKIPPED` where none
//! answers, which CI refuses).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use dossier_s1sim::{SimConfig, Tenant};
use rand::{Rng, SeedableRng};

mod support;

use support::{bin, free_port, kill9, post, run};

const TOKEN: &str = "crash-test-token-81c2";
const KILLS: usize = 20;

/// The database the servers of a run use.
#[derive(Clone)]
enum Db {
    Sqlite,
    /// A PostgreSQL server; each server of the run gets a schema of its own in its database.
    Postgres(String),
}

/// The one place that says which database the servers run on: every command of a server is
/// given the URL it makes (a fresh database in `dir`, or a fresh schema named after it). The
/// checks read through the API only.
fn db_url(db: &Db, dir: &Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}", dir.join("dossier.db").display()),
        Db::Postgres(base) => {
            let name = dir.file_name().unwrap().to_str().unwrap();
            support::pg_schema(base, &format!("crash_{name}")).0
        }
    }
}

struct Server {
    /// The database URL every command of this server is given.
    url: String,
    dir: PathBuf,
    port: u16,
    ca: PathBuf,
    /// A stories viewer's key of the server's account.
    viewer: String,
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

/// Sets up an account, a key and a connector to the tenant; returns the server description.
fn setup(db: &Db, root: &Path, name: &str, base_url: &str, ca_pem: &str) -> Server {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let url = db_url(db, &dir);
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let (account, key) = support::account_with_editor(&url, name);
    let viewer = run(&[
        "api-key",
        "create",
        "--role",
        "stories-viewer",
        "--account",
        &account,
        "--db",
        &url,
    ]);
    let server = Server {
        url,
        dir,
        port: free_port(),
        ca,
        viewer,
    };
    let mut child = server.spawn();
    let body = serde_json::json!({"kind": "sentinelone", "name": "S1", "tenant_url": base_url, "api_token": TOKEN});
    let resp = post(server.port, "/api/v1/connectors", &key, &body.to_string());
    assert!(resp.contains("\"status\":\"pending\""), "{resp}");
    // Leave the first server running for the caller? No: each phase starts its own.
    kill9(&mut child);
    server
}

/// A minimal blocking HTTP GET of the API, as JSON; `None` while the server does not answer.
fn api_get(server: &Server, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).ok()?;
    // HTTP/1.0: the answer is the body up to the end of the connection, never chunked.
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n",
        server.viewer
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{path}: {head}"
    );
    Some(serde_json::from_str(body).unwrap())
}

/// Every item of a paged list of the API, following its cursor.
fn all_items(server: &Server, path: &str) -> Option<Vec<serde_json::Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=1000&cursor={c}"),
            None => format!("{path}{sep}limit=1000"),
        };
        let page = api_get(server, &url)?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Some(items),
        }
    }
}

/// Every story of the server's account, as the list shows it.
fn stories(server: &Server) -> Option<Vec<serde_json::Value>> {
    all_items(server, "/api/v1/stories?from=2000-01-01T00:00:00Z")
}

/// How many incidents the server's stories hold, by their counts; 0 while it does not answer.
fn incident_count(server: &Server) -> u64 {
    stories(server).map_or(0, |all| {
        all.iter()
            .map(|s| s["incident_count"].as_u64().unwrap_or(0))
            .sum()
    })
}

/// A story's incidents: (threat id, its update time as stored): the first page from the story,
/// the rest from its incident pages.
fn incidents(server: &Server, story: &str) -> Vec<(String, chrono::DateTime<Utc>)> {
    let read = |page: &serde_json::Value| -> Vec<(String, chrono::DateTime<Utc>)> {
        page.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_owned(),
                    i["updated_at"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect()
    };
    let detail = api_get(server, &format!("/api/v1/stories/{story}")).unwrap();
    let mut out = read(&detail["incidents"]);
    let mut cursor = detail["incidents_next_cursor"].as_str().map(str::to_owned);
    while let Some(c) = cursor {
        let page = api_get(
            server,
            &format!("/api/v1/stories/{story}/incidents?limit=1000&cursor={c}"),
        )
        .unwrap();
        out.extend(read(&page["items"]));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
    }
    out
}

/// (story partition, per-story facts) as the API shows them.
type Snapshot = (
    BTreeSet<Vec<String>>,
    BTreeMap<Vec<String>, (u64, String, String, u64, String)>,
);

/// The incidents (all, and distinct threats) and the stories of a running server, once it
/// holds `want` incidents, each at its threat's latest update.
fn settled_snapshot(
    server: &Server,
    want: u64,
    latest: &BTreeMap<String, chrono::DateTime<Utc>>,
) -> (u64, u64, Snapshot) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        // The counts are one cheap read; the whole scan only once they are complete.
        while incident_count(server) < want {
            assert!(Instant::now() < deadline, "ingest did not complete");
            std::thread::sleep(Duration::from_millis(200));
        }
        let mut partition = BTreeSet::new();
        let mut facts = BTreeMap::new();
        let (mut n, mut distinct, mut stale) = (0u64, BTreeSet::new(), 0usize);
        let all = stories(server).unwrap();
        // Thousands of story pages: read by a few clients at once, as the server serves them.
        let chunk = all.len().div_ceil(4).max(1);
        let read_all: Vec<Vec<(String, chrono::DateTime<Utc>)>> = std::thread::scope(|scope| {
            let readers: Vec<_> = all
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|s| incidents(server, s["id"].as_str().unwrap()))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            readers
                .into_iter()
                .flat_map(|r| r.join().unwrap())
                .collect()
        });
        for (story, read) in all.iter().zip(read_all) {
            assert!(!read.is_empty(), "no story without incidents: {story}");
            stale += read
                .iter()
                .filter(|(id, at)| latest.get(id) != Some(at))
                .count();
            let mut members: Vec<String> = read.into_iter().map(|(id, _)| id).collect();
            n += members.len() as u64;
            distinct.extend(members.iter().cloned());
            members.sort();
            let text = |k: &str| story[k].as_str().unwrap_or_default().to_owned();
            facts.insert(
                members.clone(),
                (
                    story["incident_count"].as_u64().unwrap(),
                    text("first_signal_at"),
                    text("last_signal_at"),
                    story["criticality"].as_u64().unwrap(),
                    text("indication"),
                ),
            );
            partition.insert(members);
        }
        if stale == 0 {
            return (n, distinct.len() as u64, (partition, facts));
        }
        assert!(
            Instant::now() < deadline,
            "{stale} incidents never got their latest update"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn sigkill_during_ingest_loses_and_doubles_nothing() {
    sigkill_during_ingest(&Db::Sqlite);
}

#[test]
fn sigkill_during_ingest_loses_and_doubles_nothing_on_postgres() {
    if let Some(url) = support::postgres("the crash test on PostgreSQL") {
        sigkill_during_ingest(&Db::Postgres(url));
    }
}

fn sigkill_during_ingest(db: &Db) {
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

    let crashy = setup(db, root.path(), "crashy", &sim.base_url, &sim.ca_pem);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let mut child = crashy.spawn();
    // Kills are timed in units of how long this machine takes from a start to a first commit,
    // so that they land mid-ingest on a slow machine (or a debug build) as on a fast one.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    while incident_count(&crashy) == 0 {
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
        let threats = tenant.threat_count() as u64;
        child = crashy.spawn();
        // At least what the killed server had committed (the new one may have added some):
        // fewer than the tenant's threats means the kill landed before ingest caught up.
        counts.push((incident_count(&crashy), threats));
    }
    eprintln!("incidents committed at each kill: {counts:?}");
    // The kills must land during the ingest, not after it.
    let mid = counts
        .iter()
        .filter(|&&(committed, threats)| committed > 0 && committed < threats)
        .count();
    assert!(
        mid >= KILLS / 2,
        "too few kills landed mid-ingest: {counts:?}"
    );
    // The latest update of each threat, as a store keeps it (to the microsecond).
    let latest: BTreeMap<String, chrono::DateTime<Utc>> = tenant
        .all_ids()
        .into_iter()
        .map(|id| {
            let v = tenant.threat(&id).unwrap();
            let at: chrono::DateTime<Utc> = v["threatInfo"]["updatedAt"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            let micros = at.timestamp_micros();
            (id, chrono::DateTime::from_timestamp_micros(micros).unwrap())
        })
        .collect();
    let total = latest.len() as u64;
    let (n, distinct, crashed) = settled_snapshot(&crashy, total, &latest);
    kill9(&mut child);

    let calm = setup(db, root.path(), "calm", &sim.base_url, &sim.ca_pem);
    let mut child = calm.spawn();
    let (_, _, reference) = settled_snapshot(&calm, total, &latest);
    kill9(&mut child);

    assert_eq!(
        (n, distinct),
        (total, total),
        "every threat is exactly one incident"
    );
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
    if let Db::Postgres(base) = db {
        for server in [&crashy, &calm] {
            support::drop_pg_schema(base, &server.url);
        }
    }
}
