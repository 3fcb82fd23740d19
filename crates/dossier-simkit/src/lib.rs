//! What every tenant emulator shares: a fresh self-signed CA ([`tls::generate`]), an HTTPS
//! server for an axum router ([`serve_https`]) that can play a tenant that is down, and the
//! running emulator around both ([`start`], [`RunningSim`]).
//!
//! Each emulator (`dossier-s1sim`, `dossier-mdesim`, `dossier-cssim`) keeps its vendor's routes,
//! state, error bodies and faults; only the transport lives here, once.

pub mod faults;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Writes `envelope` with its empty list `marker` (`"value":[]`) filled with `items`, each
/// already a JSON text, in order: an emulator keeps each record's served text and splices it
/// into a page rather than cloning and serialising every record again. Without the marker,
/// the envelope as it is.
pub fn splice_list(envelope: &str, marker: &str, items: &[std::sync::Arc<str>]) -> String {
    let Some(at) = envelope.find(marker) else {
        return envelope.to_owned();
    };
    let open = at + marker.len() - 1;
    let size = envelope.len() + items.iter().map(|t| t.len() + 1).sum::<usize>();
    let mut out = String::with_capacity(size);
    out.push_str(&envelope[..open]);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push_str(&envelope[open..]);
    out
}

/// Text a tenant writes into the records it serves that a JSON value cannot hold, or that a
/// test cannot easily make: a lone UTF-16 surrogate escape (`\ud800`, which an NTFS file name
/// can carry), an id with surrounding whitespace. Each listed text is replaced in every list
/// page served, for as long as it is listed, so that a record keeps it across versions.
#[derive(Clone, Default, Debug)]
pub struct Rewrites(std::sync::Arc<std::sync::RwLock<Vec<(String, String)>>>);

impl Rewrites {
    /// Serves `to` wherever a page holds `from`, from now on.
    pub fn set(&self, from: &str, to: &str) {
        let mut all = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.retain(|(f, _)| f != from);
        all.push((from.to_owned(), to.to_owned()));
    }

    /// Serves `from` as it is again.
    pub fn remove(&self, from: &str) {
        let mut all = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.retain(|(f, _)| f != from);
    }

    /// Returns a page's text with every listed text replaced.
    #[must_use]
    pub fn apply(&self, body: Vec<u8>) -> Vec<u8> {
        let all = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if all.is_empty() {
            return body;
        }
        let mut text = match String::from_utf8(body) {
            Ok(text) => text,
            Err(e) => return e.into_bytes(),
        };
        for (from, to) in all.iter() {
            if text.contains(from.as_str()) {
                text = text.replace(from.as_str(), to);
            }
        }
        text.into_bytes()
    }
}

/// What can go wrong when starting an emulator's server.
#[derive(Debug, thiserror::Error)]
pub enum SimkitError {
    /// The listen address cannot be bound or the server cannot run.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The certificates cannot be generated.
    #[error("certificate generation failed: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS configuration is rejected.
    #[error("tls configuration failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// Says whether the tenant is down: while it is, connections are closed without a response.
pub type IsDown = Arc<dyn Fn() -> bool + Send + Sync>;

/// A running HTTPS server. Dropping it stops the server too; `shutdown` also waits for it.
pub struct Https {
    /// `https://127.0.0.1:PORT` (the certificate also names `localhost`).
    pub base_url: String,
    /// The CA that signed the server certificate, PEM.
    pub ca_pem: String,
    /// The bound address.
    pub local_addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Https {
    /// Stops accepting, drops open connections and waits until the port is released.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Https {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// A running emulator serving its tenant `T`. Dropping it stops the server too; `shutdown`
/// also waits for it.
pub struct RunningSim<T> {
    /// `https://127.0.0.1:PORT` (the certificate also names `localhost`): the base URL a
    /// connector is given.
    pub base_url: String,
    /// The CA that signed the server certificate, PEM.
    pub ca_pem: String,
    /// The tenant being served.
    pub tenant: T,
    /// The bound address.
    pub local_addr: SocketAddr,
    https: Https,
}

impl<T> std::fmt::Debug for RunningSim<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl<T> RunningSim<T> {
    /// Writes the CA certificate (PEM) to `path`, e.g. for `--tenant-ca-file`.
    pub fn write_ca_pem(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    /// Stops accepting, drops open connections and waits until the port is released.
    pub async fn shutdown(self) {
        self.https.shutdown().await;
    }
}

/// Starts an emulator: serves `router` (the tenant's routes) over HTTPS with a freshly
/// generated self-signed CA named `ca_name`, the tenant playing down whenever `is_down` says
/// so. `listen` may use port 0.
pub async fn start<T>(
    tenant: T,
    listen: SocketAddr,
    ca_name: &str,
    router: Router,
    is_down: fn(&T) -> bool,
) -> Result<RunningSim<T>, SimkitError>
where
    T: Clone + Send + Sync + 'static,
{
    let down = tenant.clone();
    let https = serve_https(router, listen, ca_name, Arc::new(move || is_down(&down))).await?;
    Ok(RunningSim {
        base_url: https.base_url.clone(),
        ca_pem: https.ca_pem.clone(),
        tenant,
        local_addr: https.local_addr,
        https,
    })
}

/// Serves `router` over HTTPS with a freshly generated CA named `ca_name`. `listen` may use
/// port 0.
pub async fn serve_https(
    router: Router,
    listen: SocketAddr,
    ca_name: &str,
    is_down: IsDown,
) -> Result<Https, SimkitError> {
    let certs = tls::generate(ca_name)?;
    let acceptor = TlsAcceptor::from(Arc::new(certs.server_config));
    let listener = TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    let host = match local_addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let base_url = format!("https://{}", SocketAddr::new(host, local_addr.port()));
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, acceptor, router, is_down, stopped));
    tracing::debug!(%base_url, ca_name, "emulator listening");
    Ok(Https {
        base_url,
        ca_pem: certs.ca_pem,
        local_addr,
        stop: Some(stop),
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    is_down: IsDown,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A stop signal, or the handle dropped.
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    if is_down() {
                        drop(tcp);
                        continue;
                    }
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(serve(tcp, acceptor.clone(), router.clone(), Arc::clone(&is_down)));
                }
                Err(error) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::debug!(%error, "emulator accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// The tenant is down: the connection is closed without a response.
#[derive(Debug)]
struct TenantDown;

impl std::fmt::Display for TenantDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("tenant is down")
    }
}

impl std::error::Error for TenantDown {}

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor, router: Router, is_down: IsDown) {
    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
    else {
        return;
    };
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        let is_down = Arc::clone(&is_down);
        async move {
            if is_down() {
                return Err(TenantDown);
            }
            match router.oneshot(request).await {
                Ok(response) => Ok(response),
                Err(never) => match never {},
            }
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::{splice_list, Rewrites};

    #[test]
    fn rewrites_last_until_removed() {
        let r = Rewrites::default();
        let page = br#"{"name":"MARK","id":"1"}"#.to_vec();
        assert_eq!(r.apply(page.clone()), page);
        r.set("MARK", r"x\ud800");
        r.set(r#""id":"1""#, r#""id":" 1""#);
        assert_eq!(
            r.apply(page.clone()),
            br#"{"name":"x\ud800","id":" 1"}"#.to_vec()
        );
        r.remove("MARK");
        assert_eq!(
            r.apply(page.clone()),
            br#"{"name":"MARK","id":" 1"}"#.to_vec()
        );
        assert_eq!(r.apply(vec![0xff, 0xfe]), vec![0xff, 0xfe]);
    }

    #[test]
    fn a_list_is_spliced_into_its_envelope_in_order() {
        let items: Vec<std::sync::Arc<str>> = vec!["{\"a\":1}".into(), "[2]".into()];
        assert_eq!(
            splice_list(
                r#"{"n":2,"value":[],"more":false}"#,
                r#""value":[]"#,
                &items
            ),
            r#"{"n":2,"value":[{"a":1},[2]],"more":false}"#
        );
        assert_eq!(
            splice_list(r#"{"value":[]}"#, r#""value":[]"#, &[]),
            r#"{"value":[]}"#
        );
        assert_eq!(splice_list("{}", r#""value":[]"#, &items), "{}");
    }
}
