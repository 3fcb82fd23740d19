//! The HTTPS server: the shared emulator ([`dossier_simkit::start`]) serving this tenant's
//! routes.

use std::net::SocketAddr;

use crate::error::SimError;
use crate::routes::router;
use crate::tenant::Tenant;

/// A running emulator ([`dossier_simkit::RunningSim`] of this tenant). Dropping it stops the
/// server too; `shutdown` also waits for it.
pub type RunningSim = dossier_simkit::RunningSim<Tenant>;

/// Starts the emulator over HTTPS with a freshly generated self-signed CA and leaf
/// certificate. `listen` may use port 0.
pub async fn start(tenant: Tenant, listen: SocketAddr) -> Result<RunningSim, SimError> {
    let routes = router(tenant.clone());
    Ok(dossier_simkit::start(
        tenant,
        listen,
        "Dossier SentinelOne emulator CA",
        routes,
        Tenant::is_down,
    )
    .await?)
}
