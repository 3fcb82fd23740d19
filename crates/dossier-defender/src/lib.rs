//! Microsoft Defender for Endpoint as a source of Dossier: the Entra ID client-credentials
//! token, the Microsoft Graph `security/alerts_v2` client, the mapping of alerts onto domain
//! incidents, and the [`Defender`] source the generic worker drives.
//!
//! The API facts and pitfalls are in `docs/PRODUCERS.md` §1; comments cite its sections.
//! `docs/producers/defender.md` lists the calls, the mapping table, the errors and the
//! permissions a customer grants.

pub mod client;
pub mod evidence;
pub mod mapping;
pub mod query;
pub mod source;

pub use client::{Client, ClientConfig, ClientError, Credentials, RetryObserver, Retrying};
pub use mapping::{map_alert, remap_stored, MapError};
pub use query::{AlertQuery, Bound, Cursor, MAX_TOP};
pub use source::{failure, graph_verdict, Defender, DefenderConnection};

use dossier_domain::{Judged, Producer, ProducerSpec};

/// Microsoft Defender for Endpoint as a producer: its alerts' stable name, vendor and engine,
/// and its judgement of an alert, a severity (PRODUCT.md, "Producers").
static PRODUCER: ProducerSpec = ProducerSpec {
    name: "defender",
    vendor: "Microsoft Defender",
    engine_type: "endpoint",
    judged: Judged::BySeverity,
};

/// Returns Microsoft Defender for Endpoint as a producer.
pub fn producer() -> Producer {
    Producer::new(&PRODUCER)
}
