//! What a source is: one producer's connector, seen from the worker that drives it.
//!
//! A [`Source`] is a kind of connector (`sentinelone`, and later `defender`, `crowdstrike`). It
//! checks a connector's secret, connects to a tenant ([`Connection`]), maps the records it reads
//! to neutral incidents, and says how the Workbench names it. The server's one generic worker
//! drives any source: backoff and retries, batching and the ingest budget, health and its
//! events, the sweeps ([`Checkpoint`]), and the fence on every commit. Nothing outside a source's
//! own crate names its vendor; the binary lists the sources it is built with ([`Sources`]).

pub mod checkpoint;
pub mod http;
pub mod mapping;
pub mod outline;
pub mod unreadable;

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
pub use unreadable::{too_large_reason, RecordIdentity, Unreadable, UnreadableKey};

/// What the worker does about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The producer refused the credentials (401): asking again cannot help until someone
    /// saves the connector with new ones, so the worker pauses (SENTINELONE.md §6.7).
    CredentialsRejected,
    /// The credentials lack a permission or the scope (403): paused likewise.
    PermissionDenied,
    /// The credentials are valid, but a permission is not granted or consented yet (Defender's
    /// "Missing application roles"): the connector is `pending`, with a reason saying which
    /// permission to grant and where, and the worker asks again every while, since the grant
    /// happens in the vendor's console, not in Dossier.
    ConsentPending,
    /// Rate limited on every try, or told to wait longer than the client waits itself.
    RateLimited { retry_after: Option<Duration> },
    /// The response was larger than the deployment's cap (`max_body_bytes`): the walk asks for
    /// smaller pages, halving down to one record, rather than the same page again.
    TooLarge,
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
    /// The try timed out: it counts in the connector's error figures even when a retry then
    /// succeeds, since a tenant that answers only on a second try is a slow one.
    pub timed_out: bool,
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
    /// Records the producer sent that could not be given at all (the one record of a page
    /// over the size cap, [`Unreadable::over_the_cap`]): reported and passed over like a
    /// record that does not map, its update time counting towards the walk's.
    pub unreadable: Vec<Unreadable>,
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

/// What a connector is configured with: the tenant's base URL, the kind's other fields (not
/// secret) and its secret (opened from its encrypted form only to connect).
pub struct Settings {
    pub tenant_url: Url,
    /// The kind's own fields as [`Source::configure`] returned them (`tenant_id`, `client_id`, …).
    pub config: Config,
    pub secret: SecretString,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("tenant_url", &self.tenant_url.as_str())
            .field("config", &self.config)
            .field("secret", &"<hidden>")
            .finish()
    }
}

/// A connector kind's own fields that are not secret, stored in clear beside the connector.
pub type Config = serde_json::Map<String, serde_json::Value>;

/// One field a connector kind is configured with, as the API names it and the connector form
/// asks for it.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The API's name for it: `client_id`.
    pub name: &'static str,
    /// What the form calls it: `Application (client) ID`.
    pub label: &'static str,
    /// Where to find it in the vendor's console, for the form.
    pub help: &'static str,
    /// An example value, for the form's placeholder.
    pub example: &'static str,
    /// Written once and never shown again (the API never returns it).
    pub secret: bool,
    /// A create needs it.
    pub required: bool,
    /// The values it may take, when it is a choice (`us-1`, `eu-1`, …); empty otherwise.
    pub choices: &'static [&'static str],
}

/// What a connector has stored, for a change to be read against.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub tenant_url: &'a str,
    pub config: &'a Config,
}

/// A connector's configuration as its source read it from a create or change body.
pub struct Configured {
    /// The base URL the connector polls (the API's `tenant_url`).
    pub tenant_url: Url,
    /// Every URL the secret is sent to (the base URL, a login URL, …). Each passes the address
    /// guard, and a change to any of them needs the secret again: a stored secret is only ever
    /// sent where it was saved for.
    pub secret_urls: Vec<Url>,
    /// The kind's other fields, not secret.
    pub config: Config,
    /// The secret, when the body gave one.
    pub secret: Option<SecretString>,
}

impl std::fmt::Debug for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configured")
            .field("tenant_url", &self.tenant_url.as_str())
            .field("config", &self.config)
            .field("secret", &self.secret.as_ref().map(|_| "<hidden>"))
            .finish_non_exhaustive()
    }
}

/// Parses and normalises a URL a connector sends its secret to, to its origin
/// (`https://host[:port]`): `https://` only, no user name or password, query or fragment.
///
/// # Errors
/// A sentence naming `field` and what is wrong.
pub fn parse_tenant_url(input: &str, field: &str) -> Result<Url, String> {
    let bad = |reason: &str| format!("{field}: {reason}");
    let input = input.trim();
    if input.is_empty() {
        return Err(bad("is required: an https:// address"));
    }
    if input.len() > 2048 {
        return Err(bad("is longer than 2048 characters"));
    }
    let url = Url::parse(input).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if url.scheme() != "https" {
        return Err(bad("must start with https://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    if url.query().is_some() {
        return Err(bad("must not contain a query (?…)"));
    }
    if url.fragment().is_some() {
        return Err(bad("must not contain a fragment (#…)"));
    }
    let Some(host) = url.host_str() else {
        return Err(bad("has no host"));
    };
    let origin = match url.port() {
        Some(p) => format!("https://{host}:{p}"),
        None => format!("https://{host}"),
    };
    Url::parse(&origin).map_err(|e| bad(&e.to_string()))
}

/// Reads a configuration body's text field: trimmed, `None` when absent or blank.
///
/// # Errors
/// When the field is there but not text.
pub fn text_field(body: &Config, name: &str) -> Result<Option<String>, String> {
    match body.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => {
            let s = s.trim();
            Ok((!s.is_empty()).then(|| s.to_owned()))
        }
        Some(_) => Err(format!("{name}: must be a string")),
    }
}

/// Refuses a configuration body's fields that a kind does not have.
///
/// # Errors
/// A sentence naming the first unknown field and the kind's fields.
pub fn only_fields(body: &Config, kind: &str, fields: &[Field]) -> Result<(), String> {
    if let Some(unknown) = body.keys().find(|k| !fields.iter().any(|f| f.name == *k)) {
        let known: Vec<&str> = fields.iter().map(|f| f.name).collect();
        return Err(format!(
            "{unknown}: not a field of a {kind} connector (its fields: {})",
            known.join(", ")
        ));
    }
    Ok(())
}

/// Reads a secret as an editor typed it: trimmed, at most `max` bytes, no control characters.
///
/// # Errors
/// A sentence naming `field`, never echoing the secret.
pub fn secret_field(
    body: &Config,
    field: &str,
    max: usize,
) -> Result<Option<SecretString>, String> {
    let Some(secret) = text_field(body, field)? else {
        return Ok(None);
    };
    if secret.len() > max || secret.chars().any(char::is_control) {
        return Err(format!(
            "{field}: is not a valid value (at most {max} characters, no control characters)"
        ));
    }
    Ok(Some(SecretString::from(secret)))
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

    /// Carries out a response action on the producer's records (and their devices), and
    /// returns the tenant's answer for each target, in the order given. A source that cannot
    /// act keeps this default, which refuses.
    ///
    /// # Errors
    /// When the action cannot be tried at all; a failure of one target is its [`Outcome`].
    async fn respond(
        &self,
        action: ResponseAction,
        scope: ResponseScope,
        targets: &[Target],
    ) -> Result<Vec<Outcome>, Failure> {
        let _ = (scope, targets);
        Err(Failure {
            kind: FailureKind::Rejected,
            reason: format!(
                "this producer's connector cannot {} from Dossier",
                action.verb()
            ),
        })
    }

    /// Reads the producer's own notes and timeline of one record; `Ok(None)` when the tenant
    /// no longer holds the record. A source whose [`Source::reads_vendor_notes`] is false keeps
    /// this default, which refuses.
    ///
    /// # Errors
    /// When the tenant cannot be read.
    async fn vendor_notes(&self, record_id: &str) -> Result<Option<VendorNotes>, Failure> {
        let _ = record_id;
        Err(Failure {
            kind: FailureKind::Rejected,
            reason: "this producer's notes and timeline are not read by Dossier".to_owned(),
        })
    }
}

/// A response action an analyst takes from a story, on its producer's records: the domain's,
/// which the next steps name too.
pub use dossier_domain::next_steps::ResponseAction;

/// Where a blocklist entry applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ResponseScope {
    /// The whole account of the tenant.
    Account,
    /// The site of the threat's device (the narrower, default scope).
    #[default]
    Site,
}

impl ResponseScope {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseScope::Account => "account",
            ResponseScope::Site => "site",
        }
    }
}

/// One record a response action is for, with its device as the producer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The producer's id for the record.
    pub record_id: String,
    /// The producer's id for the record's device (its agent), when it gave one.
    pub device_id: Option<String>,
}

/// The tenant's answer for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub record_id: String,
    pub ok: bool,
    /// What the tenant said: `affected 1`, or why it refused.
    pub detail: String,
}

/// The producer's own notes and timeline of one record, read on demand for the story page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorNotes {
    /// The analysts' notes in the producer's console, oldest first.
    pub notes: Vec<VendorNote>,
    /// What the producer's console says happened to the record, oldest first.
    pub timeline: Vec<VendorActivity>,
    /// Whether the producer holds more of either than was read ([`VENDOR_NOTES_MAX`] each):
    /// the latest are kept.
    pub truncated: bool,
}

/// The most notes, and the most timeline entries, read of one record: the latest.
pub const VENDOR_NOTES_MAX: usize = 100;

/// One note on a record, in the producer's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorNote {
    pub text: String,
    /// Who wrote it, as the console names them.
    pub author: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
}

/// One entry of a record's timeline in the producer's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorActivity {
    pub text: String,
    pub created_at: Option<DateTime<Utc>>,
}

/// One fact of a record that its producer alone gives, for the story page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// What it is: `Command line`, `Parent process`, `Device (other)`.
    pub label: String,
    pub value: String,
}

impl Evidence {
    /// A fact, when the record has it: `None` and blank values are left out.
    /// A value is cut to [`mapping::COMMAND_LINE_MAX`], the longest a tenant's string is kept.
    pub fn of(label: &str, value: Option<&str>) -> Option<Self> {
        let value = value?.trim();
        (!value.is_empty()).then(|| {
            let mut value = value.to_owned();
            mapping::bound(&mut value, mapping::COMMAND_LINE_MAX);
            Self {
                label: label.to_owned(),
                value,
            }
        })
    }
}

/// Words the Workbench and the API use for a source.
#[derive(Debug, Clone, Copy)]
pub struct Labels {
    /// The vendor's name: `SentinelOne`.
    pub vendor: &'static str,
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

    /// The fields a connector of this kind is configured with, in the form's order.
    fn fields(&self) -> &'static [Field];

    /// The field that holds the connector's base URL (its `tenant_url`): a form that shows a
    /// saved connector fills it in from there.
    fn base_url_field(&self) -> &'static str {
        "tenant_url"
    }

    /// Reads a connector's own fields from a create body (`current` is `None`) or a change
    /// body, where a field left out keeps its stored value. Checks every value, and refuses a
    /// field the kind does not have. The secret is checked here, before it is encrypted.
    ///
    /// # Errors
    /// A sentence naming the field and what is wrong with it, never echoing a secret.
    fn configure(&self, body: &Config, current: Option<Stored<'_>>) -> Result<Configured, String>;

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

    /// Maps one record onto an incident, keeping its text as the incident's raw JSON (through
    /// [`mapping::keep_raw`], which reads lone surrogates lossily and bounds every string).
    ///
    /// # Errors
    /// Why the record cannot be read, with the record: the worker reports it
    /// ([`unreadable`]).
    fn map(&self, record: Box<RawValue>) -> Result<Incident, mapping::Unmapped>;

    /// Where a record says its id and update time, to name one that cannot be mapped.
    fn identity(&self) -> RecordIdentity;

    /// Maps a stored record's raw JSON again, as [`Source::map`] did at ingest; `raw` left
    /// empty. `None` when it no longer maps.
    fn remap_stored(&self, raw: &str) -> Option<Incident>;

    /// The link to a record in the producer's console, if the producer has one.
    fn console_link(&self, tenant_url: &str, record_id: &str) -> Option<String>;

    /// What a record says that only its producer gives (a process's command line and parent,
    /// an alert's other evidence, the vendor's own tactic ids), in the order the story page
    /// shows it; read from the record's raw JSON. None by default: what every producer gives
    /// is in the incident already.
    fn evidence(&self, _raw: &str) -> Vec<Evidence> {
        Vec::new()
    }

    /// Whether its connections read a record's notes and timeline in the producer's console
    /// ([`Connection::vendor_notes`]). False by default.
    fn reads_vendor_notes(&self) -> bool {
        false
    }

    /// What names the tenant a connector reaches, among connectors of this kind: two
    /// connectors of one account with the same key read the same records (the tenant added
    /// twice, or two tokens whose scopes overlap), and each record is kept once, by the first
    /// to read it. `None` when the configuration cannot tell. By default the tenant URL's
    /// origin, for a producer whose tenants each have their own address.
    fn tenant_key(&self, tenant_url: &str, config: &Config) -> Option<String> {
        let _ = config;
        origin(tenant_url)
    }
}

/// A URL's scheme, host (lower case) and port, without a trailing slash: the same tenant
/// however its address was typed.
#[must_use]
pub fn origin(url: &str) -> Option<String> {
    let url = Url::parse(url.trim()).ok()?;
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port_or_known_default() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    })
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
                record_name: "",
            }
        }
        fn fields(&self) -> &'static [Field] {
            &[]
        }
        fn configure(&self, _: &Config, _: Option<Stored<'_>>) -> Result<Configured, String> {
            Err("not here".into())
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
        fn map(&self, record: Box<RawValue>) -> Result<Incident, mapping::Unmapped> {
            Err(mapping::Unmapped {
                reason: "not here".into(),
                record,
            })
        }
        fn identity(&self) -> RecordIdentity {
            RecordIdentity {
                id: "/id",
                updated: "/updated",
            }
        }
        fn remap_stored(&self, _: &str) -> Option<Incident> {
            None
        }
        fn console_link(&self, _: &str, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn one_tenant_has_one_origin_however_its_address_is_typed() {
        let key = |u: &str| origin(u);
        assert_eq!(
            key("https://Tenant.Example.net/"),
            Some("https://tenant.example.net:443".into())
        );
        assert_eq!(
            key("https://tenant.example.net:443"),
            key("https://TENANT.example.net")
        );
        assert_ne!(
            key("https://tenant.example.net:8443"),
            key("https://tenant.example.net")
        );
        assert_ne!(key("https://a.example.net"), key("https://b.example.net"));
        assert_eq!(key("not a url"), None);
    }

    #[test]
    fn a_tenant_url_is_an_https_origin() {
        assert_eq!(
            parse_tenant_url(" https://a.example.net/web/api ", "graph_url").map(String::from),
            Ok("https://a.example.net/".to_owned())
        );
        for (bad, why) in [
            ("", "graph_url: is required"),
            (
                "http://a.example.net",
                "graph_url: must start with https://",
            ),
            (
                "https://u:p@a.example.net",
                "graph_url: must not contain a user name",
            ),
            (
                "https://a.example.net/?x=1",
                "graph_url: must not contain a query",
            ),
        ] {
            let e = parse_tenant_url(bad, "graph_url").err().unwrap_or_default();
            assert!(e.starts_with(why), "{bad}: {e}");
        }
    }

    #[test]
    fn configuration_fields_are_read_and_checked() {
        const FIELDS: [Field; 1] = [Field {
            name: "client_id",
            label: "",
            help: "",
            example: "",
            secret: false,
            required: true,
            choices: &[],
        }];
        let body: Config =
            serde_json::from_str(r#"{"client_id":" abc ","blank":"  ","n":3,"secret":"s\u0007x"}"#)
                .unwrap_or_default();
        assert_eq!(text_field(&body, "client_id"), Ok(Some("abc".into())));
        assert_eq!(text_field(&body, "blank"), Ok(None));
        assert_eq!(text_field(&body, "absent"), Ok(None));
        assert_eq!(text_field(&body, "n"), Err("n: must be a string".into()));
        let e = secret_field(&body, "secret", 100).err().unwrap_or_default();
        assert!(e.starts_with("secret: is not a valid value"), "{e}");
        assert!(!e.contains("s\u{7}x"));
        assert_eq!(
            only_fields(&body, "k", &FIELDS).err().as_deref(),
            Some("blank: not a field of a k connector (its fields: client_id)")
        );
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
