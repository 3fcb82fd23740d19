//! What a source is: one producer's connector, seen from the worker that drives it.
//!
//! A [`Source`] is a kind of connector (`sentinelone`, and later `defender`, `crowdstrike`). It
//! checks a connector's secret, connects to a tenant ([`Connection`]), maps the records it reads
//! to neutral incidents, and says how the Workbench names it. The server's one generic worker
//! drives any source: backoff and retries, batching and the ingest budget, health and its
//! events, the sweeps ([`Checkpoint`]), and the fence on every commit. Nothing outside a source's
//! own crate names its vendor; the binary lists the sources it is built with ([`Sources`]).

pub mod checkpoint;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dossier_domain::story::Verdict;
use dossier_domain::{Incident, Producer};
use secrecy::SecretString;
use serde_json::value::RawValue;
use url::Url;

pub use checkpoint::{
    credible_updated_at, BackfillProgress, Checkpoint, PollPolicy, Window, MAX_PAGE_SIZE,
};

/// What the worker does about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The producer refused the credentials (401): asking again cannot help until someone
    /// saves the connector with new ones, so the worker pauses (SENTINELONE.md §6.7).
    CredentialsRejected,
    /// The credentials lack a permission or the scope (403): paused likewise.
    PermissionDenied,
    /// Rate limited on every try, or told to wait longer than the client waits itself.
    RateLimited { retry_after: Option<Duration> },
    /// The producer refused the request itself (a 400): mid-walk, the cursor is no longer
    /// honoured and the walk starts again from its bound.
    Rejected,
    /// Anything else (unreachable, TLS, timeouts, server errors, bad responses): worth trying
    /// again later.
    Other,
}

/// A failed call to a producer: what the worker does about it, and what an operator reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Failure {
    pub kind: FailureKind,
    /// The cause in words an operator can act on. Never holds a secret.
    pub reason: String,
}

impl Failure {
    /// Returns whether only an operator can mend this (the credentials or their permissions).
    #[must_use]
    pub fn needs_operator(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::CredentialsRejected | FailureKind::PermissionDenied
        )
    }
}

/// A try that failed and that the client is about to make again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrying {
    /// Why the try failed, in an operator's words.
    pub reason: String,
    /// Which retry this is (1 for the first), of at most `of` for this kind of failure.
    pub retry: u32,
    pub of: u32,
    /// How long the call has been going on, its first try included.
    pub failing_for: Duration,
}

/// Told of each retry before the client waits for it; it runs inside the call, so it must
/// return at once.
pub type RetryObserver = Arc<dyn Fn(&Retrying) + Send + Sync>;

/// One page of records, as the producer sent them.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Box<RawValue>>,
    /// The walk's next page, if there is one.
    pub next_cursor: Option<String>,
}

/// How the deployment lets a source reach tenants.
#[derive(Clone, Debug)]
pub struct Environment {
    /// Extra trust roots (PEM) for tenants.
    pub extra_roots_pem: Option<Vec<u8>>,
    pub request_timeout: Duration,
    /// First and largest wait between retries.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Largest response accepted.
    pub max_body_bytes: u64,
    /// Refuse internal addresses on every connection (unless the deployment allows private
    /// tenants).
    pub refuse_internal_addresses: bool,
}

/// What a connector is configured with: the tenant's base URL and its secret (opened from its
/// encrypted form only to connect).
pub struct Settings {
    pub tenant_url: Url,
    pub secret: SecretString,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("tenant_url", &self.tenant_url.as_str())
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// One connector's link to its tenant.
#[async_trait]
pub trait Connection: Send + Sync {
    /// Reads the page of records a walk's window asks for.
    async fn fetch(&self, window: &Window) -> Result<Page, Failure>;

    /// Reads when the credentials expire, where the producer tells; `Ok(None)` when it cannot.
    async fn credential_expiry(&self) -> Result<Option<DateTime<Utc>>, Failure>;

    /// Sends an analyst's verdict on a closed story to the producer's records of it, and
    /// returns what was sent, in words for the story's timeline (`verdict true_positive and
    /// status resolved`).
    async fn write_back(&self, record_ids: &[String], verdict: Verdict) -> Result<String, Failure>;
}

/// Words the Workbench and the API use for a source.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    /// The vendor's name: `SentinelOne`.
    pub vendor: &'static str,
    /// An example tenant URL for the connector form.
    pub tenant_url_example: &'static str,
    /// What the secret is called: `API token`.
    pub secret_name: &'static str,
    /// The secret in a word, inside sentences: `token`.
    pub secret_noun: &'static str,
    /// Which secret to create in the vendor's console: `a service-user token`.
    pub secret_hint: &'static str,
    /// What a record is called in the producer's console: `threat`.
    pub record_name: &'static str,
}

/// One producer's connector kind.
pub trait Source: Send + Sync {
    /// The connector `kind` of the API.
    fn kind(&self) -> &'static str;

    /// The producer its incidents come from.
    fn producer(&self) -> Producer;

    /// Its words for the Workbench.
    fn labels(&self) -> Labels;

    /// Checks a secret as an editor typed it, before it is encrypted and stored.
    ///
    /// # Errors
    /// A sentence naming what is wrong, never echoing the secret.
    fn check_secret(&self, secret: &str) -> Result<SecretString, String>;

    /// Connects a connector to its tenant.
    ///
    /// # Errors
    /// When the settings cannot make a client (a bad CA file, say), as a [`Failure`].
    fn connect(
        &self,
        settings: Settings,
        env: &Environment,
        on_retry: Option<RetryObserver>,
    ) -> Result<Arc<dyn Connection>, Failure>;

    /// Maps one record onto an incident, keeping its text as the incident's raw JSON.
    ///
    /// # Errors
    /// Why the record cannot be read.
    fn map(&self, record: Box<RawValue>) -> Result<Incident, String>;

    /// Maps a stored record's raw JSON again, as [`Source::map`] did at ingest; `raw` left
    /// empty. `None` when it no longer maps.
    fn remap_stored(&self, raw: &str) -> Option<Incident>;

    /// The link to a record in the producer's console, if the producer has one.
    fn console_link(&self, tenant_url: &str, record_id: &str) -> Option<String>;
}

/// Every source this build knows.
#[derive(Clone, Default)]
pub struct Sources {
    all: Arc<Vec<Arc<dyn Source>>>,
}

impl Sources {
    /// The sources of a build, in the order the Workbench lists them.
    #[must_use]
    pub fn new(all: Vec<Arc<dyn Source>>) -> Self {
        // Each source declares its producer as it names it, so that a stored producer name
        // parses from the start, before the first record is mapped.
        for source in &all {
            let _ = source.producer();
        }
        Self { all: Arc::new(all) }
    }

    /// The source of a connector kind.
    #[must_use]
    pub fn by_kind(&self, kind: &str) -> Option<&Arc<dyn Source>> {
        self.all.iter().find(|s| s.kind() == kind)
    }

    /// The source of a producer.
    #[must_use]
    pub fn by_producer(&self, producer: Producer) -> Option<&Arc<dyn Source>> {
        self.all.iter().find(|s| s.producer() == producer)
    }

    /// Every source.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Source>> {
        self.all.iter()
    }

    /// The source of a connector kind.
    ///
    /// # Errors
    /// When this build has no such kind: a sentence naming the kinds it has.
    pub fn of_kind(&self, kind: &str) -> Result<Arc<dyn Source>, String> {
        self.by_kind(kind)
            .cloned()
            .ok_or_else(|| format!("unknown connector kind {kind:?}; known: {}", self.kinds()))
    }

    /// The connector kinds, comma-separated, for error messages.
    fn kinds(&self) -> String {
        self.all
            .iter()
            .map(|s| s.kind())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Each producer's mapping of a stored incident's raw JSON, as a store asks for it.
    pub fn remap(&self) -> impl Fn(Producer, &str) -> Option<Incident> + Send + Sync + 'static {
        let sources = self.clone();
        move |producer, raw| sources.by_producer(producer)?.remap_stored(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Named(&'static str);

    impl Source for Named {
        fn kind(&self) -> &'static str {
            self.0
        }
        fn producer(&self) -> Producer {
            static SPEC: dossier_domain::ProducerSpec = dossier_domain::ProducerSpec {
                name: "named",
                vendor: "Named",
                engine_type: "endpoint",
                judged: dossier_domain::Judged::ByConfidence,
            };
            Producer::new(&SPEC)
        }
        fn labels(&self) -> Labels {
            Labels {
                vendor: "V",
                tenant_url_example: "",
                secret_name: "",
                secret_noun: "",
                secret_hint: "",
                record_name: "",
            }
        }
        fn check_secret(&self, secret: &str) -> Result<SecretString, String> {
            Ok(SecretString::from(secret.to_owned()))
        }
        fn connect(
            &self,
            _: Settings,
            _: &Environment,
            _: Option<RetryObserver>,
        ) -> Result<Arc<dyn Connection>, Failure> {
            Err(Failure {
                kind: FailureKind::Other,
                reason: "not here".into(),
            })
        }
        fn map(&self, _: Box<RawValue>) -> Result<Incident, String> {
            Err("not here".into())
        }
        fn remap_stored(&self, _: &str) -> Option<Incident> {
            None
        }
        fn console_link(&self, _: &str, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn an_unknown_kind_names_the_kinds_there_are() {
        let sources = Sources::new(vec![Arc::new(Named("a")), Arc::new(Named("b"))]);
        assert_eq!(sources.of_kind("b").map(|s| s.kind()), Ok("b"));
        assert_eq!(
            sources.of_kind("c").err().as_deref(),
            Some("unknown connector kind \"c\"; known: a, b")
        );
    }
}
