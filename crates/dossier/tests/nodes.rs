//! Three nodes on one PostgreSQL database: 50 emulated tenants of ten accounts (an MSSP's
//! customers), 200,000 threats. One node is
//! killed (SIGKILL) mid-run; its connectors resume on the others within 30 s. In the end every
//! threat is in exactly one incident, and the stories are identical, id for id, to those of one
//! node on SQLite reading the same tenants. Sessions and sign-in failures are every node's.
//!
//! `DOSSIER_NODES_THREATS` makes the run smaller for a quick look (its default is the size
//! above). Where no PostgreSQL server answers, the test says `SKIPPED`, which CI refuses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use dossier_s1sim::{SimConfig, Tenant};

use support::{bin, free_port, kill9, post, run};

const TOKEN: &str = "nodes-test-token-5d1e";
const TENANTS: usize = 50;
/// The MSSP's customers: each an account of its own with five tenants. Commits of one account
/// take turns; those of different accounts run side by side.
const ACCOUNTS: usize = 10;

struct Node {
    port: u16,
    child: Child,
}

impl Drop for Node {
    /// A node outlives no test, failed or not.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a node on `url` with the secret key in `dir`, trusting the tenants' CA in `ca`.
fn start_node(url: &str, dir: &Path, ca: Option<&Path>, name: &str) -> Node {
    start_node_with(url, dir, ca, name, &[])
}

/// [`start_node`], with more flags.
fn start_node_with(url: &str, dir: &Path, ca: Option<&Path>, name: &str, extra: &[&str]) -> Node {
    let port = free_port();
    let mut args: Vec<String> = [
        "serve",
        "--db",
        url,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--allow-private-tenants",
        "--secret-key-file",
        dir.join("secret.key").to_str().unwrap(),
        "--node-id",
        name,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    if let Some(ca) = ca {
        args.extend([
            "--tenant-ca-file".to_owned(),
            ca.to_str().unwrap().to_owned(),
        ]);
    }
    // What a node logs goes to a file, read back when the test fails.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    let child = Command::new(bin())
        .args(&args)
        .env("RUST_LOG", "warn,dossier_store_postgres::leases=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "node {name} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Node { port, child }
}

/// The last lines each node logged in `dir`, for a failure's message.
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str("--- ");
        out.push_str(&f.display().to_string());
        out.push_str(" (last lines)\n");
        for l in &lines[lines.len().saturating_sub(40)..] {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

fn pg(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap()
}

fn count(c: &mut postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

/// Each incident as (story, connector, threat), and each story's facts, sorted: what must be
/// identical between two runs.
type Outcome = (
    Vec<(String, String, String)>,
    Vec<(String, i64, i64, i64, i64, String)>,
);

const MEMBERS: &str = "SELECT story_id, connector_id, external_id FROM incidents ORDER BY 1, 2, 3";
const FACTS: &str = "SELECT id, incident_count, first_signal_at, last_signal_at, criticality, \
     indication FROM stories ORDER BY id";

fn outcome_pg(url: &str) -> Outcome {
    let mut c = pg(url);
    let members = c
        .query(MEMBERS, &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let facts = c
        .query(FACTS, &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    (members, facts)
}

fn outcome_sqlite(path: &Path) -> Outcome {
    let c = rusqlite::Connection::open(path).unwrap();
    let mut st = c.prepare(MEMBERS).unwrap();
    let members = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut st = c.prepare(FACTS).unwrap();
    let facts = st
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    (members, facts)
}

/// Which node holds each connector's lease (only live leases).
fn owners(c: &mut postgres::Client) -> BTreeMap<String, String> {
    c.query(
        "SELECT connector_id, owner FROM connector_leases
         WHERE expires_at >= (extract(epoch FROM clock_timestamp()) * 1000000)::bigint",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// A web sign-in on a node: its status and its session cookie, if it set one.
fn sign_in(port: u16, user: &str, password: &str) -> (u16, Option<String>) {
    use std::io::{Read, Write};
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("username", user)
        .append_pair("password", password)
        .finish();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let cookie = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .and_then(|c| c.split(';').next())
        .filter(|c| !c.ends_with('='))
        .map(str::to_owned);
    (status, cookie)
}

/// The status of a page of the Workbench fetched with a session cookie.
fn page_status(port: u16, path: &str, cookie: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: localhost\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out[9..12].parse().unwrap()
}

/// Sessions and sign-in failures are every node's: a session made on one node is good on
/// another, and failures spread over the nodes add up to one limit.
fn sessions_and_sign_in_failures_are_every_nodes(nodes: &[Node], password: &str) {
    let (status, cookie) = sign_in(nodes[0].port, "analyst", password);
    assert_eq!(status, 303, "signed in on the first node");
    assert_eq!(
        page_status(nodes[2].port, "/stories", &cookie.unwrap()),
        200
    );
    for attempt in 0..5 {
        let (status, _) = sign_in(nodes[attempt % 3].port, "analyst", "wrong-password-123");
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let (status, _) = sign_in(nodes[2].port, "analyst", password);
    assert_eq!(
        status, 429,
        "five failures over three nodes reach the limit of one"
    );
}

/// Waits until every node holds its share of the connectors.
fn until_spread(db: &mut postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = owners(db);
        let per_node: BTreeMap<&String, usize> = held.values().fold(BTreeMap::new(), |mut m, o| {
            *m.entry(o).or_default() += 1;
            m
        });
        if held.len() == TENANTS && per_node.len() == 3 && per_node.values().all(|n| *n >= 16) {
            eprintln!("connectors spread: {per_node:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "connectors never spread: {per_node:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The same tenants read by one node on SQLite, with the same accounts and connectors (ids
/// included: a story's id is made of its account, its key and its first incident), until it
/// holds `want` incidents: what it tells.
fn one_node_on_sqlite(db: &mut postgres::Client, root: &Path, ca: &Path, want: i64) -> Outcome {
    let dir = root.join("single");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("dossier.db");
    let sqlite_url = format!("sqlite://{}", file.display());
    run(&[
        "api-key",
        "create",
        "--role",
        "operator",
        "--db",
        &sqlite_url,
    ]);
    {
        let target = rusqlite::Connection::open(&file).unwrap();
        for row in db
            .query("SELECT id, name, licence, created_at FROM accounts", &[])
            .unwrap()
        {
            target
                .execute(
                    "INSERT INTO accounts (id, name, licence, created_at) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![
                        row.get::<_, String>(0),
                        row.get::<_, String>(1),
                        row.get::<_, String>(2),
                        row.get::<_, i64>(3)
                    ],
                )
                .unwrap();
        }
        for r in db
            .query(
                "SELECT id, account_id, kind, name, tenant_url, token_enc, created_at, config
                 FROM connectors",
                &[],
            )
            .unwrap()
        {
            target
                .execute(
                    "INSERT INTO connectors (id, account_id, kind, name, tenant_url, token_enc,
                         track_errors, status, created_at, updated_at, config)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 'pending', ?7, ?7, ?8)",
                    rusqlite::params![
                        r.get::<_, String>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                        r.get::<_, String>(3),
                        r.get::<_, String>(4),
                        r.get::<_, Vec<u8>>(5),
                        r.get::<_, i64>(6),
                        r.get::<_, String>(7)
                    ],
                )
                .unwrap();
        }
    }
    let single = start_node(&sqlite_url, root, Some(ca), "single");
    let reference_started = Instant::now();
    let sqlite_count = || -> i64 {
        rusqlite::Connection::open(&file)
            .unwrap()
            .query_row("SELECT count(*) FROM incidents", [], |r| r.get(0))
            .unwrap()
    };
    while sqlite_count() < want {
        assert!(
            reference_started.elapsed() < Duration::from_secs(1800),
            "the single node did not complete"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(single);
    let on_one = outcome_sqlite(&file);
    eprintln!(
        "one node on SQLite: {want} threats in {:?}, {} stories",
        reference_started.elapsed(),
        on_one.1.len()
    );
    on_one
}

/// The installation, made on the first node: ten accounts, their keys, a user (whose password
/// is returned) and a connector to each tenant; then two more nodes. Returns the three nodes,
/// and the tenant of each connector.
fn install(
    url: &str,
    root: &Path,
    ca: &Path,
    tenants: &[&str],
) -> (Vec<Node>, BTreeMap<String, usize>, String) {
    // The installation: ten accounts, their keys, a user and 50 connectors, made on one node.
    let accounts: Vec<(String, String)> = (0..ACCOUNTS)
        .map(|i| support::account_with_editor(url, &format!("Customer {i}")))
        .collect();
    let password = run(&[
        "user",
        "create",
        "--username",
        "analyst",
        "--role",
        "stories-viewer",
        "--account",
        &accounts[0].0,
        "--db",
        url,
    ]);
    let names = ["node-a", "node-b", "node-c"];
    let mut nodes = vec![start_node(url, root, Some(ca), names[0])];
    let mut tenant_of: BTreeMap<String, usize> = BTreeMap::new();
    for (i, base_url) in tenants.iter().enumerate() {
        let editor = &accounts[i % ACCOUNTS].1;
        let body = serde_json::json!({"kind": "sentinelone", "name": format!("tenant {i}"),
            "tenant_url": base_url, "api_token": TOKEN});
        let resp = post(
            nodes[0].port,
            "/api/v1/connectors",
            editor,
            &body.to_string(),
        );
        assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");
        let (_, json) = resp.split_once("\r\n\r\n").unwrap();
        let id = serde_json::from_str::<serde_json::Value>(json.trim()).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        tenant_of.insert(id, i);
    }
    nodes.push(start_node(url, root, Some(ca), names[1]));
    nodes.push(start_node(url, root, Some(ca), names[2]));
    (nodes, tenant_of, password)
}

#[test]
fn three_nodes_share_the_work_survive_a_sigkill_and_tell_the_stories_of_one() {
    let Some(base) = support::postgres("the three-node test") else {
        return;
    };
    let total: usize = std::env::var("DOSSIER_NODES_THREATS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    let per_tenant = total.div_ceil(TENANTS);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let now = Utc::now();
    let sims: Vec<_> = (0..TENANTS)
        .map(|i| {
            let tenant = Tenant::new(&SimConfig::new(1000 + i as u64, 40, TOKEN));
            tenant.generate_history(
                per_tenant,
                now - chrono::Duration::days(60),
                now - chrono::Duration::minutes(5),
            );
            rt.block_on(dossier_s1sim::start(tenant, "127.0.0.1:0".parse().unwrap()))
                .unwrap()
        })
        .collect();
    let threats = per_tenant * TENANTS;
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca.pem");
    std::fs::write(
        &ca,
        sims.iter()
            .map(|s| s.ca_pem.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();

    let (url, schema) = support::pg_schema(&base, "nodes");
    let tenants: Vec<&str> = sims.iter().map(|s| s.base_url.as_str()).collect();
    let (mut nodes, tenant_of, password) = install(&url, root.path(), &ca, &tenants);
    let names = ["node-a", "node-b", "node-c"];
    let started = Instant::now();

    sessions_and_sign_in_failures_are_every_nodes(&nodes, &password);

    let mut db = pg(&url);
    until_spread(&mut db);

    // Kill one node once about a third of the threats are in.
    let want = i64::try_from(threats).unwrap();
    while count(&mut db, "SELECT count(*) FROM incidents") < want / 3 {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "ingest stalled\n{}",
            logs(root.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let victim = names[1];
    let orphans: BTreeSet<String> = owners(&mut db)
        .into_iter()
        .filter(|(_, o)| o == victim)
        .map(|(c, _)| c)
        .collect();
    assert!(
        !orphans.is_empty(),
        "{victim} held no lease when it was to be killed: {:?}; exited: {:?}\n{}",
        owners(&mut db),
        nodes
            .iter_mut()
            .map(|n| n.child.try_wait().ok().flatten())
            .collect::<Vec<_>>(),
        logs(root.path())
    );
    kill9(&mut nodes[1].child);
    let killed = Instant::now();
    let in_at_kill = count(&mut db, "SELECT count(*) FROM incidents");
    // At full size the kill lands mid-ingest; a run made small for a quick look may finish
    // before it.
    assert!(
        in_at_kill < want || total < 200_000,
        "the kill landed after the ingest"
    );
    eprintln!(
        "killed {victim} with {} connectors after {:?}, {in_at_kill} incidents in",
        orphans.len(),
        started.elapsed()
    );
    // Its connectors resume on the others: each is leased by a live node, and its tenant is
    // asked for threats again (the killed node asks nothing more).
    let asked = |c: &String| sims[tenant_of[c]].tenant.request_count();
    let before: BTreeMap<&String, u64> = orphans.iter().map(|c| (c, asked(c))).collect();
    loop {
        let held = owners(&mut db);
        let resumed = orphans
            .iter()
            .all(|c| held.get(c).is_some_and(|o| o != victim) && asked(c) > before[c]);
        if resumed {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(30),
            "the killed node's connectors did not resume within 30 s\n{}",
            logs(root.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let resumed_after = killed.elapsed();
    eprintln!("its connectors resumed on the survivors after {resumed_after:?}");

    // Every threat, exactly once.
    while count(&mut db, "SELECT count(*) FROM incidents") < want {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "ingest did not complete\n{}",
            logs(root.path())
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let ingest = started.elapsed();
    let row = db
        .query_one(
            "SELECT count(*), count(DISTINCT (connector_id, external_id)) FROM incidents",
            &[],
        )
        .unwrap();
    let (n, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(
        (n, distinct),
        (want, want),
        "every threat is exactly one incident"
    );
    drop(nodes);
    let on_three = outcome_pg(&url);
    eprintln!(
        "three nodes: {threats} threats in {ingest:?}, {} stories",
        on_three.1.len()
    );

    let on_one = one_node_on_sqlite(&mut db, root.path(), &ca, want);

    assert_eq!(on_three.0.len(), on_one.0.len(), "as many incidents");
    assert_eq!(on_three.1.len(), on_one.1.len(), "as many stories");
    assert!(
        on_three.0 == on_one.0,
        "each incident in the story of the same id"
    );
    assert!(on_three.1 == on_one.1, "each story with the same facts");

    rt.block_on(async {
        for sim in sims {
            sim.shutdown().await;
        }
    });
    let _ = pg(&base).batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// A node started with another secret key than the nodes before it is refused before it
/// seals a token the others could not read.
#[test]
fn a_node_with_another_secret_key_is_refused() {
    let Some(base) = support::postgres("the secret key check between nodes") else {
        return;
    };
    let (url, schema) = support::pg_schema(&base, "keys");
    let root = tempfile::tempdir().unwrap();
    let first = root.path().join("first");
    std::fs::create_dir_all(&first).unwrap();
    drop(start_node(&url, &first, None, "node-a"));
    // The same key again is taken.
    drop(start_node(&url, &first, None, "node-b"));

    let other = root.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let out = Command::new(bin())
        .args([
            "serve",
            "--db",
            &url,
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--secret-key-file",
            other.join("secret.key").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not the one the other nodes of this database use"),
        "{err}"
    );
    let _ = pg(&base).batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
}

/// A node whose pool is held (here its one connection, by a request waiting on a table another
/// session locked; in life, commits waiting their account's turn) still renews its leases:
/// rounds run beside the manager's other work, on a connection of their own.
#[test]
fn a_node_whose_pool_is_busy_still_renews_its_leases() {
    let Some(base) = support::postgres("the lease renewal of a busy node") else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let tenant = Tenant::new(&SimConfig::new(7, 4, TOKEN));
    tenant.generate_history(
        20,
        Utc::now() - chrono::Duration::days(2),
        Utc::now() - chrono::Duration::minutes(5),
    );
    let sim = rt
        .block_on(dossier_s1sim::start(tenant, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca.pem");
    std::fs::write(&ca, &sim.ca_pem).unwrap();
    let (url, schema) = support::pg_schema(&base, "busy");
    let (_, editor) = support::account_with_editor(&url, "Busy");
    let node = start_node_with(
        &url,
        root.path(),
        Some(&ca),
        "node-a",
        &[
            "--db-pool-size",
            "1",
            "--lease-ttl",
            "4",
            "--lease-renew-every",
            "1",
        ],
    );
    let body = serde_json::json!({"kind": "sentinelone", "name": "busy",
        "tenant_url": sim.base_url, "api_token": TOKEN});
    let resp = post(node.port, "/api/v1/connectors", &editor, &body.to_string());
    assert!(resp.starts_with("HTTP/1.1 201"), "{resp}");

    let mut db = pg(&url);
    let expiry = |db: &mut postgres::Client| -> Option<i64> {
        db.query_opt(
            "SELECT expires_at FROM connector_leases WHERE owner = 'node-a'",
            &[],
        )
        .unwrap()
        .map(|r| r.get(0))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while expiry(&mut db).is_none() {
        assert!(Instant::now() < deadline, "the node never took the lease");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A request holds the pool's one connection, waiting for a table locked elsewhere.
    let mut locker = pg(&url);
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let port = node.port;
    let request = std::thread::spawn(move || post(port, "/api/v1/connectors", &editor, "{}"));
    let waiting = |db: &mut postgres::Client| -> i64 {
        db.query_one(
            "SELECT count(*) FROM pg_locks WHERE relation = 'api_keys'::regclass AND NOT granted",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while waiting(&mut db) == 0 {
        assert!(Instant::now() < deadline, "the request never waited");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The lease is renewed all the same, well past the time it would have expired.
    let first = expiry(&mut db).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = expiry(&mut db).expect("the lease was lost");
        if now > first + 6_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the lease was not renewed while the pool was busy\n{}",
            logs(root.path())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(waiting(&mut db), 0, "the request was still waiting");

    tx.rollback().unwrap();
    let resp = request.join().unwrap();
    assert!(resp.starts_with("HTTP/1.1 4"), "{resp}");
    drop(node);
    rt.block_on(sim.shutdown());
    let _ = pg(&base).batch_execute(&format!("DROP SCHEMA {schema} CASCADE"));
}
