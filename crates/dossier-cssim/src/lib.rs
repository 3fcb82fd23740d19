//! An emulated CrowdStrike Falcon tenant (OAuth 2.0 and Alerts API) for the demo, integration
//! tests and benchmarks.
//!
//! - [`Tenant`] holds the state: seeded, realistic alerts in the exact shape of the Alerts API
//!   samples (endpoint `ldt` and `ods` alerts, and some identity `idp` alerts a `product:'epp'`
//!   filter leaves out), API clients, tokens and queued faults. Clones share it; tests drive it
//!   from Rust while the server reads it.
//! - [`start`] serves it over HTTPS with a fresh self-signed CA ([`RunningSim::ca_pem`]).
//! - [`Fault`]s make the next answers of the alert endpoints fail the ways the real API does.
//!
//! Endpoints (JSON envelope `{"meta","resources","errors"}`, PRODUCERS.md §2.6):
//! - `POST /oauth2/token` (form `client_id`, `client_secret`, `member_cid`?): 201
//!   `{"access_token","token_type":"bearer","expires_in"}` with `X-Cs-Region`; a wrong client
//!   or secret gets the real 403 "Failed to issue access token - Client authentication
//!   failed" body, an unreadable request (or an unknown `member_cid`) the 400 "Failed to
//!   generate access token".
//! - `GET /alerts/queries/alerts/v2?filter=&sort=&limit=&offset=`: composite ids. FQL subset
//!   `product`, `updated_timestamp` `>`/`>=`/`<`/`<=`; sort `updated_timestamp|asc` only;
//!   `offset + limit > 10000` gets the real 400.
//! - `POST /alerts/entities/alerts/v2` `{"composite_ids"}`: alerts; more than 1,000 ids → 413.
//! - `PATCH /alerts/entities/alerts/v3` `{"composite_ids","action_parameters"}`: status, tags
//!   and comments change, `updated_timestamp` moves; bodies are kept ([`Tenant::writes`]).
//! - `/detects/*`: 404, retired on 2025-09-30 (PRODUCERS.md §2.1).
//!
//! Alert endpoints need `Authorization: Bearer <token>` (401 "access denied, invalid bearer
//! token" otherwise), the Alerts: Read scope (Write for the update; 403 "access denied,
//! authorization failed" otherwise), and answer with `X-Ratelimit-Limit` and
//! `X-Ratelimit-Remaining`; over the configured limit they answer 429 with
//! `X-Ratelimit-Retryafter` in epoch seconds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), dossier_cssim::SimError> {
//! use dossier_cssim::{start, SimConfig, Tenant};
//! let tenant = Tenant::new(&SimConfig::new(42, 50, "client-id", "client-secret"));
//! let now = chrono::Utc::now();
//! tenant.generate_history(1_000, now - chrono::Duration::days(90), now);
//! let sim = start(tenant, "127.0.0.1:0".parse().unwrap()).await?;
//! sim.tenant.generate_live(chrono::Utc::now());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

#![recursion_limit = "256"] // one json! literal holds a whole alert, as the API sends it

mod config;
mod envelope;
mod error;
mod faults;
mod fql;
mod generate;
mod routes;
mod server;
mod tenant;

pub use config::{ClientSpec, SimConfig};
pub use error::SimError;
pub use faults::{Fault, FAULT_LIST_SYNTAX};
pub use server::{start, RunningSim};
pub use tenant::Tenant;
