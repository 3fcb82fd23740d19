//! An emulated SentinelOne tenant (Management API v2.1) for the demo, integration tests,
//! crash tests and benchmarks.
//!
//! - [`Tenant`] holds the state: realistic, seeded threats in the exact v2.1 shape of the
//!   samples in `testdata/sentinelone/` (see `generate` for the mix), tokens and queued faults.
//!   Clones share it; tests drive it from Rust while the server reads it.
//! - [`start`] serves it over HTTPS with a fresh self-signed CA ([`RunningSim::ca_pem`]).
//! - [`Fault`]s make the next `GET /threats` answers fail the ways real tenants and proxies do.
//!
//! Endpoints under `/web/api/v2.1` (JSON, `X-RQID`, errors as
//! `{"errors":[{"code","detail","title"}]}`):
//! - `GET /threats`: `Authorization: ApiToken <t>` (scheme case-insensitive); 401 `4010010`,
//!   403 `4030010`; 400 `4000010` for `limit ∉ 1..=1000`, `skip ∉ 0..=1000`, unknown `sortBy`
//!   or `sortOrder`, unparsable dates or ids, and foreign cursors. Filters: `createdAt__*`,
//!   `updatedAt__*`, `ids`, `agentIds`, `siteIds`, `groupIds`, `accountIds`, `contentHashes`,
//!   `storylines`, the status/verdict/confidence/classification/OS lists (and their `…Nin`),
//!   `resolved`; `skipCount` (→ `totalItems: null`), `countOnly`. Keyset order
//!   `(sort value, numeric id)`. `nextCursor` binds every parameter except `cursor`, `limit`,
//!   `skipCount` and `countOnly` (page size may change mid-walk); `skip` applies to the first
//!   page only. Rate limit per token when configured (429 `4290010`, `Retry-After`).
//! - `GET /system/status` (no auth), `GET /system/info`, `POST /users/api-token-details`.
//! - `POST /threats/analyst-verdict`, `/threats/incident`, `/threats/mitigate/{action}`.
//! - `GET /threats/{id}/timeline`, `GET /threats/{id}/notes` (404 for unknown ids).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dossier_s1sim::SimError> {
//! use dossier_s1sim::{start, SimConfig, Tenant};
//! let tenant = Tenant::new(&SimConfig::new(42, 50, "token"));
//! let now = chrono::Utc::now();
//! tenant.generate_history(1_000, now - chrono::Duration::days(90), now);
//! let sim = start(tenant, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("{} trusts {} bytes of CA", sim.base_url, sim.ca_pem.len());
//! sim.tenant.generate_live(chrono::Utc::now());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod agents;
mod auth;
mod catalog;
mod config;
mod cursor;
mod envelope;
mod error;
mod families;
mod faults;
mod files;
mod generate;
mod host;
mod ids;
mod lifecycle;
mod page;
mod query;
mod routes;
mod server;
mod store;
mod tenant;
mod threat;
mod time;
mod timeline;
mod writes;

pub use config::{SimConfig, TokenSpec};
pub use error::SimError;
pub use faults::{Fault, FAULT_LIST_SYNTAX};
pub use server::{start, RunningSim};
pub use tenant::{Tenant, ARRIVALS_KEPT, THREATS, TOKEN_DETAILS};
