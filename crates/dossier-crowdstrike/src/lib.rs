//! CrowdStrike Falcon as a source of Dossier: the OAuth 2.0 client of the Alerts API, the mapping
//! of endpoint alerts onto domain incidents, and the [`CrowdStrike`] source the generic worker
//! drives.
//!
//! The API's facts and pitfalls are in PRODUCERS.md §2 (cited as §2.x); the endpoints, the
//! mapping and the error table are in `docs/producers/crowdstrike.md`.

pub mod client;
pub mod cloud;
pub mod evidence;
pub mod mapping;
pub mod query;
pub mod source;

pub use client::{Client, ClientConfig, ClientError};
pub use cloud::Cloud;
pub use mapping::{map_alert, map_owned_alert, remap_stored, MapError};
pub use query::{AlertQuery, Cursor, MAX_IDS_PER_CALL, QUERY_WINDOW};
pub use source::{cs_verdict_tag, CrowdStrike};

use dossier_domain::{Judged, Producer, ProducerSpec};

/// CrowdStrike Falcon as a producer: its alerts' stable name, vendor and engine, and its
/// judgement of an alert, a severity (PRODUCT.md, "Producers").
static PRODUCER: ProducerSpec = ProducerSpec {
    name: "crowdstrike",
    vendor: "CrowdStrike",
    engine_type: "endpoint",
    judged: Judged::BySeverity,
};

/// Returns CrowdStrike Falcon as a producer.
pub fn producer() -> Producer {
    Producer::new(&PRODUCER)
}
