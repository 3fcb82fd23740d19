//! A scripted SentinelOne stand-in on 127.0.0.1:0 for the client tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Router;
use dossier_sentinelone::{Client, ClientConfig};
use secrecy::SecretString;
use url::Url;

pub const TOKEN: &str = "tok-SECRET-7f3a9c1e5b";

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn config(&self) -> ClientConfig {
        let url = Url::parse(&format!("http://{}", self.addr)).unwrap();
        fast_config(url)
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }
}

/// Test settings: no throttle to speak of, millisecond backoff.
pub fn fast_config(url: Url) -> ClientConfig {
    let mut c = ClientConfig::new(url, SecretString::from(TOKEN));
    c.max_requests_per_sec = 1000.0;
    c.backoff_base = Duration::from_millis(5);
    c.backoff_cap = Duration::from_millis(100);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c.max_retries = 3;
    c.max_transport_retries = 1;
    c
}

/// Serves `respond(n, request)` for the n-th request (0-based).
pub async fn serve<F, Fut>(respond: F) -> Server
where
    F: Fn(usize, Seen) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let counter = Arc::new(AtomicUsize::new(0));
    let log = seen.clone();
    let app = Router::new().fallback(move |req: Request| {
        let (respond, log, counter) = (respond.clone(), log.clone(), counter.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let s = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            log.lock().unwrap().push(s.clone());
            respond(counter.fetch_add(1, Ordering::SeqCst), s).await
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server { addr, seen }
}

pub fn json(status: u16, body: &str) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

pub const EMPTY_PAGE: &str = r#"{"data":[],"pagination":{"nextCursor":null,"totalItems":0}}"#;
pub const ERR_401: &str =
    r#"{"errors":[{"code":4010010,"detail":null,"title":"Authentication Failed"}]}"#;
pub const ERR_403: &str = r#"{"errors":[{"code":4030010,"detail":"User does not have required permissions","title":"Insufficient permissions"}]}"#;
pub const ERR_429: &str =
    r#"{"errors":[{"code":4290010,"detail":null,"title":"Too Many Requests"}]}"#;
pub const ERR_500: &str = r#"{"errors":[{"code":5000010,"detail":"Server could not process the request.","title":"Internal server error"}]}"#;
