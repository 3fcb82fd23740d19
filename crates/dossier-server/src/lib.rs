//! Dossier's server: the HTTP API v1, authentication and roles, and the connector workers
//! that poll tenants and commit what they learn.

pub mod api;
pub mod auth;
pub mod client_addr;
pub mod connections;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod overlap;
pub mod passwords;
mod recent;
pub mod respond;
pub mod secrets;
pub mod tail;
pub mod tenant_url;
pub mod vendor;
pub mod web;
pub mod worker;
pub mod writeback;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use dossier_domain::correlate::Policy;
use dossier_source::{PollPolicy, Sources};
use dossier_store::Store;
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use connections::ConnectionLimits;
pub use metrics::Metrics;
pub use secrets::SecretBox;
pub use worker::Workers;

/// Deployment settings the server and its workers run with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub allow_private_tenants: bool,
    /// Extra trust roots for tenants (PEM).
    pub tenant_ca_pem: Option<Vec<u8>>,
    pub poll_interval: Duration,
    pub request_timeout: Duration,
    /// First and largest wait between retries against a tenant (429, 5xx, errors).
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// A call the client has been retrying for this long shows its failure on the connector
    /// (in error, saying a retry is under way) before the client gives up: a tenant that stops
    /// answering is seen after one request timeout, not after every retry.
    pub retry_shown_after: Duration,
    /// A page that takes longer than this to come (retries included) shows the connector
    /// slow: `connected`, with "slow: pages take 12 s" (and how far behind it is).
    pub slow_page_after: Duration,
    /// A backlog (how far the walk under way is behind the clock) that has kept growing this
    /// long shows the connector slow likewise.
    pub slow_backlog_after: Duration,
    /// Largest tenant response accepted.
    pub max_body_bytes: u64,
    pub poll_policy: PollPolicy,
    pub correlation: Policy,
    /// During a backfill, pages are read while another commit holds the writer, until this
    /// many threats wait or this long has passed since the last commit, then committed
    /// together.
    pub ingest_batch: usize,
    pub ingest_batch_wait: Duration,
    /// Threats all connectors together may hold read but not committed (beyond the page each
    /// is reading): many tenants backfilling at once must not hold a batch each in memory.
    pub ingest_budget: usize,
    /// A poll that reads nothing new is written with the next one that does, or once this long
    /// has passed since the last commit (keeping `last_success_at` and the poll count current):
    /// an idle connector polling twice a second must not write the database twice a second.
    pub idle_commit_every: Duration,
    /// Mark session cookies Secure whatever the request says (Dossier behind TLS).
    pub secure_cookies: bool,
    /// How often the worker manager looks at the connectors again without being told of a
    /// change (a save or a deletion through this node tells it at once).
    pub manager_every: Duration,
    /// Header-read and idle timeouts and the connection cap of the HTTP server.
    pub connections: ConnectionLimits,
    /// Proxies whose `X-Forwarded-For` names the client (sign-in limits, logs).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How often a long poll of the event log reads again when no commit on this node woke
    /// it: what another node commits is seen within this.
    pub event_recheck: Duration,
    /// This node's name among the nodes sharing one database (leases name their owner).
    pub node_id: String,
    /// How long a node's connector leases last without renewal: a node that dies hands its
    /// connectors to the others within this and one `lease_renew_every`.
    pub lease_ttl: Duration,
    /// How often a node renews its leases and takes its share of the connectors; well within
    /// `lease_ttl`.
    pub lease_renew_every: Duration,
}

/// A name for this node: its host and the address it serves on. Stable across restarts, so
/// that a node killed and started again takes its own leases back at once rather than wait
/// for them to expire; and no two live nodes share it, since no two processes of one host
/// listen on one address.
#[must_use]
pub fn node_id(listen: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
                .take(60)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into());
    format!("{host}:{listen}")
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            allow_private_tenants: false,
            tenant_ca_pem: None,
            poll_interval: Duration::from_millis(500),
            request_timeout: Duration::from_secs(60),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            retry_shown_after: Duration::from_secs(10),
            slow_page_after: Duration::from_secs(10),
            slow_backlog_after: Duration::from_secs(300),
            max_body_bytes: 64 * 1024 * 1024,
            poll_policy: PollPolicy::default(),
            correlation: Policy::default(),
            ingest_batch: 10_000,
            ingest_batch_wait: Duration::from_secs(1),
            ingest_budget: 40_000,
            idle_commit_every: Duration::from_secs(30),
            secure_cookies: false,
            manager_every: Duration::from_secs(5),
            connections: ConnectionLimits::default(),
            trusted_proxies: Vec::new(),
            event_recheck: tail::RECHECK,
            node_id: format!("node-{}", std::process::id()),
            lease_ttl: Duration::from_secs(15),
            lease_renew_every: Duration::from_secs(5),
        }
    }
}

/// What every handler and worker shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The sources this build knows, by connector kind.
    pub sources: Sources,
    pub secrets: Arc<SecretBox>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<Metrics>,
    pub workers: Workers,
    pub login_limiter: Arc<web::LoginLimiter>,
    /// Permits for threats held in backfill batches, one per threat (`ingest_budget`).
    pub ingest_budget: Arc<tokio::sync::Semaphore>,
    /// Page commits under way (or waiting for the writer), across all connectors.
    pub commits_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Requests long-polling the event log.
    pub event_waiters: Arc<tail::Waiters>,
    /// Producers' notes and timelines of incidents, read on demand.
    pub vendor_cache: Arc<vendor::Cache>,
    /// Connector health the workers could not write (a full disk), shown over the stored.
    pub unrecorded: Arc<worker::Unrecorded>,
}

impl AppState {
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        sources: Sources,
        secrets: SecretBox,
        config: ServerConfig,
    ) -> Self {
        // The decoy hash unknown names are checked against is made now, not by the first
        // sign-in for an unknown name, which would take twice as long as any other.
        let _ = passwords::decoy_hash();
        let budget = config
            .ingest_budget
            .min(tokio::sync::Semaphore::MAX_PERMITS);
        Self {
            store,
            sources,
            secrets: Arc::new(secrets),
            ingest_budget: Arc::new(tokio::sync::Semaphore::new(budget)),
            commits_in_flight: Arc::default(),
            // A waiter holds a connection open: a quarter of them may wait, so the rest are
            // always there for everything else.
            event_waiters: Arc::new(tail::Waiters::new(
                config.connections.max_connections / 4,
                config.event_recheck,
            )),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::default()),
            workers: Workers::default(),
            login_limiter: Arc::new(web::LoginLimiter::default()),
            vendor_cache: Arc::default(),
            unrecorded: Arc::default(),
        }
    }
}

/// Builds the HTTP application.
pub fn app(state: AppState) -> Router {
    api::routes()
        .merge(web::routes())
        .fallback(fallback)
        .layer(axum::middleware::from_fn(web::shown_as_is))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::from_fn(api_error_bodies))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The largest request body the server reads.
pub const MAX_BODY: usize = 1024 * 1024;

/// Every error under `/api/` has the API's shape (`{"error","message"}`), also when it
/// comes from outside a handler: the body limit layer's plain 413, axum's rejections of a
/// path that is not UTF-8 or does not decode, an empty 405. Anything not already JSON is
/// rewritten from its status; a short plain-text reason is kept as the message.
async fn api_error_bodies(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    let api = path == "/api" || path.starts_with("/api/");
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = res.status();
    if !api || json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return error::ApiError::PayloadTooLarge(MAX_BODY).into_response();
    }
    let (parts, body) = res.into_parts();
    let said = axum::body::to_bytes(body, 1024)
        .await
        .ok()
        .and_then(|b| String::from_utf8(b.to_vec()).ok())
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty() && !t.contains('<'));
    let err = match status {
        axum::http::StatusCode::NOT_FOUND => error::ApiError::NotFound("route"),
        axum::http::StatusCode::METHOD_NOT_ALLOWED => error::ApiError::MethodNotAllowed,
        s if s.is_client_error() => error::ApiError::BadRequest(
            said.unwrap_or_else(|| s.canonical_reason().unwrap_or("bad request").to_lowercase()),
        ),
        s => error::ApiError::Internal(format!("{s} from outside a handler")),
    };
    let mut out = err.into_response();
    *out.status_mut() = status;
    for name in [
        axum::http::header::ALLOW,
        axum::http::header::WWW_AUTHENTICATE,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// Unknown routes: a JSON error under `/api/`, a page elsewhere.
async fn fallback(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        error::ApiError::NotFound("route").into_response()
    } else {
        web::WebError::Api(error::ApiError::NotFound("page")).into_response()
    }
}

/// A running server: its address, and the switch that stops it and its workers.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    workers: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the workers and the HTTP server, and waits for them.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.workers.await;
        let _ = self.server.await;
    }

    /// Waits until the server stops by itself (it does not, short of an error).
    pub async fn wait(self) {
        let _ = self.server.await;
    }

    /// Returns a receiver that turns true when the server is told to stop.
    #[must_use]
    pub fn shutdown_signal(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }
}

/// Binds `addr`, serves the API and starts the connector workers.
///
/// # Errors
/// Fails when the address cannot be bound.
pub async fn start(state: AppState, addr: SocketAddr) -> std::io::Result<Running> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = watch::channel(false);
    let workers = worker::spawn_manager(state.clone(), rx.clone());
    // Long polls end when the server is told to stop, rather than hold its shutdown up.
    let waiters = Arc::clone(&state.event_waiters);
    let mut stopping = rx.clone();
    tokio::spawn(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
        waiters.stop();
    });
    let limits = state.config.connections;
    let app = app(state);
    let server = tokio::spawn(connections::serve(listener, app, limits, rx));
    Ok(Running {
        addr,
        shutdown: tx,
        server,
        workers,
    })
}
