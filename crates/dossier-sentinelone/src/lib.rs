//! SentinelOne Management API v2.1 as a source of Dossier: the HTTP client, the mapping of
//! threats onto domain incidents, and the [`SentinelOne`] source the generic worker drives.
//!
//! The API and its pitfalls are described in `docs/SENTINELONE.md`; comments cite its sections
//! (§6.x are the pitfalls a robust poller must handle).

pub mod client;
pub mod envelope;
pub mod mapping;
pub mod query;
pub mod source;

mod lenient;
mod threat;

pub use client::{
    extra_roots, Client, ClientConfig, ClientError, RetryObserver, Retrying, SystemStatus,
    TokenDetails,
};
pub use envelope::{parse_error, parse_page, ApiErrorBody, ApiErrorEntry, EnvelopeError, Page};
pub use mapping::{map_owned_threat, map_threat, remap_stored, MapError};
pub use query::{SortBy, SortOrder, ThreatQuery, MAX_PAGE_SIZE};
pub use source::{failure, s1_verdict, threat_query, SentinelOne};

use dossier_domain::{Judged, Producer, ProducerSpec};

/// SentinelOne as a producer: its threats' stable name, vendor and engine, and its judgement of
/// a threat, a confidence (PRODUCT.md, "Producers").
static PRODUCER: ProducerSpec = ProducerSpec {
    name: "sentinelone",
    vendor: "SentinelOne",
    engine_type: "endpoint",
    judged: Judged::ByConfidence,
};

/// Returns SentinelOne as a producer.
pub fn producer() -> Producer {
    Producer::new(&PRODUCER)
}
