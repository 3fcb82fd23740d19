//! The HTTPS server: the shared emulator transport ([`dossier_simkit::serve_https`]) serving
//! this tenant's routes.

use std::net::SocketAddr;
use std::sync::Arc;

use dossier_simkit::Https;

use crate::error::SimError;
use crate::routes::router;
use crate::tenant::Tenant;

/// A running emulator. Dropping it stops the server too; `shutdown` also waits for it.
pub struct RunningSim {
    /// `https://127.0.0.1:PORT`: the `login_url` and the `graph_url` of a connector.
    pub base_url: String,
    /// The CA that signed the server certificate, PEM.
    pub ca_pem: String,
    /// The tenant being served.
    pub tenant: Tenant,
    pub local_addr: SocketAddr,
    https: Https,
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
    pub async fn shutdown(self) {
        self.https.shutdown().await;
    }
}

/// Starts the emulator over HTTPS with a fresh self-signed CA. `listen` may use port 0.
pub async fn start(tenant: Tenant, listen: SocketAddr) -> Result<RunningSim, SimError> {
    let down = tenant.clone();
    let https = dossier_simkit::serve_https(
        router(tenant.clone()),
        listen,
        "Dossier Microsoft Defender emulator CA",
        Arc::new(move || down.is_down()),
    )
    .await?;
    Ok(RunningSim {
        base_url: https.base_url.clone(),
        ca_pem: https.ca_pem.clone(),
        tenant,
        local_addr: https.local_addr,
        https,
    })
}
