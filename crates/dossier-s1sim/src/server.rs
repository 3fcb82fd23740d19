//! The HTTPS server: a TLS accept loop serving the axum router over hyper, one task per
//! connection (`axum::serve` has no TLS).

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

use crate::error::SimError;
use crate::routes::router;
use crate::tenant::Tenant;
use crate::tls;

/// A running emulator. Dropping it stops the server too; `shutdown` also waits for it.
pub struct RunningSim {
    /// `https://127.0.0.1:PORT` (the certificate also names `localhost`).
    pub base_url: String,
    /// The CA that signed the server certificate, PEM.
    pub ca_pem: String,
    /// The tenant being served.
    pub tenant: Tenant,
    /// The bound address.
    pub local_addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSim")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl RunningSim {
    /// Writes the CA certificate (PEM) to `path`, e.g. for `--tenant-ca-file`.
    pub fn write_ca_pem(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

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

impl Drop for RunningSim {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// Starts the emulator over HTTPS with a freshly generated self-signed CA and leaf
/// certificate. `listen` may use port 0.
pub async fn start(tenant: Tenant, listen: SocketAddr) -> Result<RunningSim, SimError> {
    let certs = tls::generate()?;
    let acceptor = TlsAcceptor::from(Arc::new(certs.server_config));
    let listener = TcpListener::bind(listen).await?;
    let local_addr = listener.local_addr()?;
    let host = match local_addr.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    let base_url = format!("https://{}", SocketAddr::new(host, local_addr.port()));
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(
        listener,
        acceptor,
        router(tenant.clone()),
        tenant.clone(),
        stopped,
    ));
    tracing::debug!(%base_url, "sentinelone emulator listening");
    Ok(RunningSim {
        base_url,
        ca_pem: certs.ca_pem,
        tenant,
        local_addr,
        stop: Some(stop),
        task: Some(task),
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    router: Router,
    tenant: Tenant,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A stop signal, or the handle dropped.
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    if tenant.is_down() {
                        drop(tcp);
                        continue;
                    }
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(serve(tcp, acceptor.clone(), router.clone(), tenant.clone()));
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

async fn serve(tcp: TcpStream, acceptor: TlsAcceptor, router: Router, tenant: Tenant) {
    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
    else {
        return;
    };
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let router = router.clone();
        let tenant = tenant.clone();
        async move {
            if tenant.is_down() {
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
