//! Prometheus metrics: connector polls, errors, threats, lag, story latency and list time.

use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    pub connector_id: String,
}

/// What became of a closed story's verdict in one connector's tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteBackLabels {
    /// `sent`, `failed`, or `off` (the connector does not write back).
    pub outcome: String,
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub polls: Family<ConnectorLabels, Counter>,
    pub errors: Family<ConnectorLabels, Counter>,
    pub threats: Family<ConnectorLabels, Counter>,
    pub unmappable: Family<ConnectorLabels, Counter>,
    pub lag_seconds: Family<ConnectorLabels, Gauge>,
    pub write_backs: Family<WriteBackLabels, Counter>,
    pub incidents_new: Counter,
    pub incidents_updated: Counter,
    pub stories_created: Counter,
    pub story_latency: Histogram,
    /// Seconds spent fetching pages, reading threats and committing pages: where ingest time goes.
    pub fetch_seconds: Counter<f64, AtomicU64>,
    pub map_seconds: Counter<f64, AtomicU64>,
    pub commit_seconds: Counter<f64, AtomicU64>,
    pub list_seconds: Histogram,
    /// Connectors whose workers run on this node (all of them on one node; its leased share
    /// when nodes share a database).
    pub connectors_held: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Writes the store ran again because the database could not order them against a
    /// concurrent one (serialization failures, deadlocks), as the store last told.
    pub store_write_retries: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics {
            registry: Mutex::new(Registry::with_prefix("dossier")),
            polls: Family::default(),
            errors: Family::default(),
            threats: Family::default(),
            unmappable: Family::default(),
            lag_seconds: Family::default(),
            write_backs: Family::default(),
            incidents_new: Counter::default(),
            incidents_updated: Counter::default(),
            stories_created: Counter::default(),
            fetch_seconds: Counter::default(),
            map_seconds: Counter::default(),
            commit_seconds: Counter::default(),
            story_latency: Histogram::new(
                [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0].into_iter(),
            ),
            list_seconds: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0].into_iter()),
            connectors_held: Gauge::default(),
            store_write_retries: Counter::default(),
        };
        if let Ok(mut r) = m.registry.lock() {
            r.register(
                "connector_polls",
                "Successful polls of a connector",
                m.polls.clone(),
            );
            r.register(
                "connector_errors",
                "Failed polls of a connector",
                m.errors.clone(),
            );
            r.register(
                "connector_threats",
                "Threats a connector read and committed (a threat read again unchanged is not counted)",
                m.threats.clone(),
            );
            r.register(
                "connector_unmappable_threats",
                "Threats that could not be read (no id or no timestamp)",
                m.unmappable.clone(),
            );
            r.register(
                "connector_lag_seconds",
                "Age of the newest threat update a connector has committed",
                m.lag_seconds.clone(),
            );
            r.register(
                "write_backs",
                "Verdicts of closed stories, per connector of their threats, by outcome: sent, \
                 failed, or off (the connector does not write back)",
                m.write_backs.clone(),
            );
            r.register(
                "incidents_new",
                "Incidents seen for the first time",
                m.incidents_new.clone(),
            );
            r.register(
                "incidents_updated",
                "Incident updates applied",
                m.incidents_updated.clone(),
            );
            r.register(
                "stories_created",
                "Stories created",
                m.stories_created.clone(),
            );
            r.register(
                "story_latency_seconds",
                "From a threat's creation in the tenant to its story being committed",
                m.story_latency.clone(),
            );
            r.register(
                "story_list_seconds",
                "Time to answer a story list query",
                m.list_seconds.clone(),
            );
            r.register(
                "page_fetch_seconds",
                "Time spent reading pages from tenants, all connectors together",
                m.fetch_seconds.clone(),
            );
            r.register(
                "page_map_seconds",
                "Time spent mapping records into incidents, all connectors together",
                m.map_seconds.clone(),
            );
            r.register(
                "connectors_held",
                "Connectors whose workers run on this node",
                m.connectors_held.clone(),
            );
            r.register(
                "store_write_retries",
                "Writes run again because the database could not order them against a \
                 concurrent one (serialization failures and deadlocks)",
                m.store_write_retries.clone(),
            );
            r.register(
                "page_commit_seconds",
                "Time spent committing pages to the store, all connectors together",
                m.commit_seconds.clone(),
            );
        }
        m
    }
}

impl Metrics {
    pub fn observe_list(&self, d: Duration) {
        self.list_seconds.observe(d.as_secs_f64());
    }

    /// Brings the count of the store's retried writes up to `total`, what the store counts.
    pub fn store_retries(&self, total: u64) {
        let seen = self.store_write_retries.get();
        if total > seen {
            self.store_write_retries.inc_by(total - seen);
        }
    }

    /// Renders the Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }

    /// The labels of a write-back with this outcome.
    #[must_use]
    pub fn write_back(outcome: &str) -> WriteBackLabels {
        WriteBackLabels {
            outcome: outcome.to_owned(),
        }
    }

    #[must_use]
    pub fn connector(id: &str) -> ConnectorLabels {
        ConnectorLabels {
            connector_id: id.to_owned(),
        }
    }
}
