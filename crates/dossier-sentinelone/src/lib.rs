//! SentinelOne Management API v2.1 connector: the HTTP client, the mapping of threats onto
//! domain incidents, and the pure checkpoint logic of polling.
//!
//! The API and its pitfalls are described in `docs/SENTINELONE.md`; comments cite its sections
//! (§6.x are the pitfalls a robust poller must handle).

pub mod client;
pub mod envelope;
pub mod mapping;
pub mod poll;
pub mod query;

mod lenient;
mod threat;

pub use client::{
    extra_roots, Client, ClientConfig, ClientError, RetryObserver, Retrying, SystemStatus,
    TokenDetails,
};
pub use envelope::{parse_error, parse_page, ApiErrorBody, ApiErrorEntry, EnvelopeError, Page};
pub use mapping::{map_owned_threat, map_threat, remap_stored, MapError};
pub use poll::{credible_updated_at, Checkpoint, PollPolicy};
pub use query::{SortBy, SortOrder, ThreatQuery, MAX_PAGE_SIZE};
