//! An emulated Microsoft Defender for Endpoint tenant: Entra ID's client-credentials token
//! endpoint and Microsoft Graph's `security/alerts_v2`, for the demo, integration tests and
//! benchmarks.
//!
//! - [`Tenant`] holds the state: seeded, realistic alerts in the exact shape of the samples in
//!   `samples/defender/` (see `generate` for the mix), the app registrations it knows, issued
//!   tokens, queued faults and the writes received. Clones share it.
//! - [`start`] serves it over HTTPS with a fresh self-signed CA ([`RunningSim::ca_pem`]), on
//!   one base URL that is both the `login_url` and the `graph_url`.
//! - [`Fault`]s make the next `GET /v1.0/security/alerts_v2` answers fail the ways real
//!   tenants and proxies do.
//!
//! Endpoints:
//! - `POST /{tenant}/oauth2/v2.0/token` (form: `grant_type=client_credentials`, `client_id`,
//!   `client_secret`, `scope=…/.default`): `{"token_type":"Bearer","expires_in",…}`, or Entra's
//!   error body: unknown tenant `AADSTS90002`, unknown client `AADSTS700016`, wrong secret
//!   `AADSTS7000215`, expired secret `AADSTS7000222`, bad scope `AADSTS70011`.
//! - `GET /v1.0/security/alerts_v2` with `Authorization: Bearer`: 401
//!   `InvalidAuthenticationToken`; 403 "Missing application roles" for an app without
//!   `SecurityAlert.Read.All`; `$filter` (clauses joined by `and`: `serviceSource`, `status`,
//!   `severity`, `classification` with `eq`/`ne`; `lastUpdateDateTime`, `createdDateTime` with
//!   `eq`/`ge`/`gt`/`le`/`lt`), `$orderby` (`lastUpdateDateTime` or `createdDateTime`, `asc` or
//!   `desc`; default `lastUpdateDateTime desc`), `$top` (1–1000, default 1000), `$skip` (at
//!   most 500), `$count`, and `@odata.nextLink` with an opaque `$skiptoken`; Graph's 400 error
//!   shape for anything else. Newer `detectionSource` values are `unknownFutureValue` unless
//!   the request sends `Prefer: include-unknown-enum-members`. A configured rate limit
//!   answers 429 `TooManyRequests` with `Retry-After`.
//! - `GET /v1.0/security/alerts_v2/{id}`, `PATCH /v1.0/security/alerts_v2/{id}` (`status`,
//!   `classification`, `determination`, `assignedTo`; needs `SecurityAlert.ReadWrite.All`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dossier_mdesim::SimError> {
//! use dossier_mdesim::{start, SimConfig, Tenant};
//! let config = SimConfig::new(42, 50);
//! let tenant = Tenant::new(&config);
//! let now = chrono::Utc::now();
//! tenant.generate_history(1_000, now - chrono::Duration::days(30), now);
//! let sim = start(tenant, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("login_url = graph_url = {}", sim.base_url);
//! sim.tenant.generate_live(chrono::Utc::now());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod auth;
mod catalog;
mod config;
mod error;
mod faults;
mod generate;
mod odata;
mod routes;
mod server;
mod store;
mod tenant;
mod ticks;

pub use config::{AppSpec, SimConfig, READ_ROLE, WRITE_ROLE};
pub use error::SimError;
pub use faults::{Fault, FAULT_LIST_SYNTAX};
pub use server::{start, RunningSim};
pub use tenant::{Tenant, Write};
pub use ticks::format_ticks;
