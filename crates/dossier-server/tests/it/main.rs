#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod api_errors;
mod audit;
mod batching;
mod browser;
mod concurrent;
mod connections;
mod disk_full;
mod display;
mod expiry;
mod exports;
mod faults;
mod guard;
mod large_story;
mod openapi;
mod overlap;
mod oversized;
mod pipeline;
mod producers;
mod regressions;
mod respond;
mod sign_in;
mod slow;
mod story_evidence;
mod tail;
mod triage;
mod unreadable;
mod vendor_notes;
mod web_access;
mod web_client;
mod web_list;
mod web_session;
mod web_workflow;
mod writeback;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dossier_domain::access::{Licence, Role};
use dossier_s1sim::{RunningSim, SimConfig, Tenant};
use dossier_server::auth::new_api_key;
use dossier_server::{AppState, Running, SecretBox, ServerConfig};
use dossier_store::ApiKeyRecord;
use dossier_store_sqlite::SqliteStore;
use serde_json::{json, Value};

pub const TOKEN: &str = "it-secret-token-3f9a7c";

/// A running server on a fresh database, with an emulated tenant beside it.
pub struct App {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub sim: RunningSim,
    pub tenant: Tenant,
    /// A second tenant (another customer's console), accepting the same token.
    pub other_sim: RunningSim,
    pub other_tenant: Tenant,
    pub running: Running,
    pub dir: tempfile::TempDir,
}

/// Every log line of this test binary, at debug level, so that tests can look for secrets in it.
pub static LOGS: std::sync::LazyLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> =
    std::sync::LazyLock::new(Default::default);

#[derive(Clone)]
struct LogSink;

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(|| LogSink)
            .with_ansi(false)
            .try_init();
    });
}

/// The captured logs, as text.
pub fn logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

pub async fn spawn_app(threats: usize) -> App {
    spawn_app_with(threats, |_| {}).await
}

/// [`spawn_app`], with the server's settings changed by `tweak` first.
pub async fn spawn_app_with(threats: usize, tweak: impl FnOnce(&mut ServerConfig)) -> App {
    spawn_app_storing_in(threats, None, tweak).await
}

/// [`spawn_app_with`], with the database in `db_dir` (a filesystem the test made, say) rather
/// than in the app's own directory.
pub async fn spawn_app_storing_in(
    threats: usize,
    db_dir: Option<&std::path::Path>,
    tweak: impl FnOnce(&mut ServerConfig),
) -> App {
    capture_logs();
    let dir = tempfile::tempdir().unwrap();
    let db = db_dir.unwrap_or(dir.path()).join("it.db");
    let tenant = Tenant::new(&SimConfig::new(11, 40, TOKEN));
    let now = Utc::now();
    tenant.generate_history(
        threats,
        now - chrono::Duration::days(30),
        now - chrono::Duration::minutes(2),
    );
    let sim = dossier_s1sim::start(tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let other_tenant = Tenant::new(&SimConfig::new(12, 5, TOKEN));
    other_tenant.generate_history(
        7,
        now - chrono::Duration::days(60),
        now - chrono::Duration::days(40),
    );
    let other_sim = dossier_s1sim::start(other_tenant.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let sources = dossier_source::Sources::new(vec![
        Arc::new(dossier_sentinelone::SentinelOne),
        Arc::new(dossier_defender::Defender),
        Arc::new(dossier_crowdstrike::CrowdStrike),
    ]);
    let store = SqliteStore::open(db.to_str().unwrap(), Arc::new(sources.remap())).unwrap();
    let secrets = SecretBox::load_or_create(&dir.path().join("key")).unwrap();
    let mut config = ServerConfig {
        allow_private_tenants: true,
        tenant_ca_pem: Some(format!("{}\n{}", sim.ca_pem, other_sim.ca_pem).into_bytes()),
        poll_interval: Duration::from_millis(100),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(200),
        request_timeout: Duration::from_secs(2),
        max_body_bytes: 4 * 1024 * 1024,
        ..ServerConfig::default()
    };
    tweak(&mut config);
    let state = AppState::new(Arc::new(store), sources, secrets, config);
    let running = dossier_server::start(state.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    App {
        base: format!("http://{}", running.addr),
        http: reqwest::Client::new(),
        state,
        sim,
        tenant,
        other_sim,
        other_tenant,
        running,
        dir,
    }
}

impl App {
    pub async fn account(&self, licence: Licence) -> String {
        self.state
            .store
            .create_account("acct", licence)
            .await
            .unwrap()
            .id
    }

    pub async fn key(&self, account: Option<&str>, roles: &[Role]) -> String {
        self.named_key(account, roles, None).await
    }

    /// [`App::key`], with the name `dossier api-key create --name` gives.
    pub async fn named_key(
        &self,
        account: Option<&str>,
        roles: &[Role],
        name: Option<&str>,
    ) -> String {
        let (key, hash) = new_api_key();
        self.state
            .store
            .insert_api_key(&ApiKeyRecord {
                id: hash[..16].to_owned(),
                account_id: account.map(str::to_owned),
                key_hash: hash,
                roles: roles.to_vec(),
                created_at: Utc::now(),
                name: name.map(str::to_owned),
            })
            .await
            .unwrap();
        key
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The threat ids of every `incident_created` event the key can see, in event order.
    pub async fn incident_ids(&self, key: &str) -> Vec<String> {
        self.all_items(key, "/api/v1/events?type=incident_created")
            .await
            .iter()
            .map(|e| e["incident_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Every story's incident count, sorted: what "the same stories" means across two runs,
    /// whose account ids (and so story ids) differ.
    pub async fn story_sizes(&self, key: &str) -> Vec<u64> {
        let mut sizes: Vec<u64> = self
            .all_items(key, "/api/v1/stories")
            .await
            .iter()
            .map(|s| s["incident_count"].as_u64().unwrap())
            .collect();
        sizes.sort_unstable();
        sizes
    }

    /// An `xops` account with an admin key and a connector to the tenant: (key, connector path).
    pub async fn admin_with_connector(&self) -> (String, String) {
        let account = self.account(Licence::Xops).await;
        let admin = self.key(Some(&account), &[Role::Admin]).await;
        let path = self.connector_path(&admin).await;
        (admin, path)
    }

    /// Creates a connector to the tenant and returns its API path.
    pub async fn connector_path(&self, key: &str) -> String {
        let c = self.create_connector(key).await;
        format!("/api/v1/connectors/{}", c["id"].as_str().unwrap())
    }

    /// Waits until the connector at `path` has read `threats` new threats and is connected.
    pub async fn until_read(&self, key: &str, path: &str, threats: usize, secs: u64) {
        self.until(secs, || async {
            let (_, c) = self.call("GET", path, Some(key), None).await;
            c["health"]["threats"].as_u64() == Some(threats as u64) && c["status"] == "connected"
        })
        .await;
    }

    /// The newest `limit` events of `event_type` the key can see.
    pub async fn events(&self, key: &str, event_type: &str, limit: usize) -> Vec<Value> {
        let path = format!("/api/v1/events?type={event_type}&limit={limit}");
        let (status, e) = self.call("GET", &path, Some(key), None).await;
        assert_eq!(status, 200, "{e}");
        e["items"].as_array().unwrap().clone()
    }

    /// The incident ids of the newest `limit` events of `event_type` the key can see.
    pub async fn incident_events(&self, key: &str, event_type: &str, limit: usize) -> Vec<String> {
        let events = self.events(key, event_type, limit).await;
        events
            .iter()
            .map(|e| e["incident_id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until the API shows an `incident_created` event for the threat.
    pub async fn until_ingested(&self, key: &str, threat_id: &str) {
        self.until(15, || async {
            let created = self.incident_events(key, "incident_created", 5).await;
            created.iter().any(|id| id == threat_id)
        })
        .await;
    }

    /// Waits until the connector at `path` reports `status`.
    pub async fn until_status(&self, key: &str, path: &str, status: &str) {
        self.until(30, || async {
            self.call("GET", path, Some(key), None).await.1["status"] == status
        })
        .await;
    }

    pub async fn create_connector(&self, key: &str) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/connectors",
                Some(key),
                Some(json!({
                    "kind": "sentinelone",
                    "name": "Tenant",
                    "tenant_url": self.sim.base_url,
                    "api_token": TOKEN,
                    "track_errors": true,
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// How many polls the worker of the connector at `path` has made, read or idle, as
    /// `/metrics` counts them: a poll counts once the worker is done with it.
    pub fn polls(&self, path: &str) -> u64 {
        let id = path.rsplit('/').next().unwrap();
        self.state
            .metrics
            .polls
            .get_or_create(&dossier_server::metrics::Metrics::connector(id))
            .get()
    }

    /// Waits until the worker of the connector at `path` has made `n` more polls than so far.
    pub async fn until_polls(&self, path: &str, n: u64) {
        let from = self.polls(path);
        self.until(30, || async { self.polls(path) >= from + n })
            .await;
    }

    /// The stored checkpoint of the connector at `path`.
    pub async fn checkpoint(&self, path: &str) -> Option<dossier_source::Checkpoint> {
        let id = path.rsplit('/').next().unwrap();
        let rec = self.state.store.get_connector(None, id).await.unwrap();
        rec.checkpoint.map(|c| serde_json::from_str(&c).unwrap())
    }

    /// Waits until the tenant answers a poll with a page of no threats: the polls have read
    /// everything there is, and find nothing more.
    pub async fn until_a_poll_reads_nothing(&self) {
        let from = self.tenant.empty_pages();
        self.until(30, || async { self.tenant.empty_pages() > from })
            .await;
    }

    /// Creates a connector to the other tenant, whose polls show time passing for workers that
    /// ask nothing (a paused or stopped one): returns its API path.
    pub async fn witness(&self, key: &str) -> String {
        let c = self
            .create_connector_to(key, &self.other_sim.base_url)
            .await;
        format!("/api/v1/connectors/{}", c["id"].as_str().unwrap())
    }

    /// Waits until the condition holds, up to `secs` seconds.
    pub async fn until<F, Fut>(&self, secs: u64, mut f: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !f().await {
            assert!(
                std::time::Instant::now() < deadline,
                "condition not met within {secs}s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
