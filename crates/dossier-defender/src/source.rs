//! Microsoft Defender for Endpoint as a [`Source`]: what the generic connector worker drives.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dossier_domain::story::Verdict;
use dossier_domain::{Incident, Producer};
use dossier_source::http;
use dossier_source::{
    only_fields, parse_tenant_url, secret_field, text_field, Config, Configured, Connection,
    Environment, Failure, FailureKind, Field, Labels, Page, RetryObserver, Settings, Source,
    Stored, Unreadable, Window,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use url::Url;

use crate::client::{AlertsPage, Client, ClientConfig, ClientError, Credentials};
use crate::query::{AlertQuery, Bound, Cursor, MAX_TOP};

/// Microsoft Graph, where alerts are read (PRODUCERS.md §1.1).
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// Entra ID, where tokens are issued (§1.2).
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";

/// Longest client secret accepted; Entra's are 40 characters.
const MAX_SECRET: usize = 1024;

/// A Defender connector's fields (PRODUCT.md, `POST /api/v1/connectors`).
const FIELDS: [Field; 5] = [
    Field {
        name: "tenant_id",
        label: "Directory (tenant) ID",
        help: "In the Microsoft Entra admin center, Entra ID › App registrations › your app › \
               Overview: Directory (tenant) ID.",
        example: "3adb963c-8e61-48e8-a06d-6dbb0dacea39",
        secret: false,
        required: true,
        choices: &[],
    },
    Field {
        name: "client_id",
        label: "Application (client) ID",
        help: "Entra ID › App registrations › your app › Overview: Application (client) ID. The \
               app needs the Microsoft Graph application permission SecurityAlert.Read.All \
               (SecurityAlert.ReadWrite.All to write verdicts back), with admin consent.",
        example: "734ef928-d74c-4555-8d1b-d942fa0a1a41",
        secret: false,
        required: true,
        choices: &[],
    },
    Field {
        name: "client_secret",
        label: "Client secret",
        help: "Entra ID › App registrations › your app › Certificates & secrets › New client \
               secret: copy its Value (not its Secret ID); it is shown only once.",
        example: "",
        secret: true,
        required: true,
        choices: &[],
    },
    Field {
        name: "graph_url",
        label: "Microsoft Graph URL",
        help: "Leave empty for https://graph.microsoft.com; a national cloud has its own \
               (https://graph.microsoft.us for US Government L4).",
        example: DEFAULT_GRAPH_URL,
        secret: false,
        required: false,
        choices: &[],
    },
    Field {
        name: "login_url",
        label: "Entra ID sign-in URL",
        help: "Leave empty for https://login.microsoftonline.com; a national cloud has its own \
               (https://login.microsoftonline.us for US Government).",
        example: DEFAULT_LOGIN_URL,
        secret: false,
        required: false,
        choices: &[],
    },
];

/// The Defender connector kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct Defender;

/// Reads a GUID field (`tenant_id`, `client_id`), lowercase.
fn guid_field(body: &Config, current: Option<&Config>, name: &str) -> Result<String, String> {
    let text = match text_field(body, name)? {
        Some(t) => t,
        None => match current.and_then(|c| c.get(name)).and_then(Value::as_str) {
            Some(stored) => stored.to_owned(),
            None => return Err(format!("{name}: is required")),
        },
    };
    let groups: Vec<&str> = text.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let is_guid = groups.len() == 5
        && groups
            .iter()
            .zip(shape)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !is_guid {
        return Err(format!(
            "{name}: must be a GUID such as 3adb963c-8e61-48e8-a06d-6dbb0dacea39"
        ));
    }
    Ok(text.to_ascii_lowercase())
}

/// Reads an optional URL field, else its stored value, else its default.
fn url_field(
    body: &Config,
    current: Option<&Config>,
    name: &str,
    default: &str,
) -> Result<Url, String> {
    let text = match text_field(body, name)? {
        Some(t) => t,
        None if body.contains_key(name) => default.to_owned(),
        None => current
            .and_then(|c| c.get(name))
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned(),
    };
    parse_tenant_url(&text, name)
}

impl Source for Defender {
    fn kind(&self) -> &'static str {
        "defender"
    }

    fn producer(&self) -> Producer {
        crate::producer()
    }

    fn labels(&self) -> Labels {
        Labels {
            vendor: crate::producer().vendor(),
            record_name: "alert",
        }
    }

    fn fields(&self) -> &'static [Field] {
        &FIELDS
    }

    fn configure(&self, body: &Config, current: Option<Stored<'_>>) -> Result<Configured, String> {
        only_fields(body, "defender", &FIELDS)?;
        let stored = current.map(|c| c.config);
        let tenant_id = guid_field(body, stored, "tenant_id")?;
        let client_id = guid_field(body, stored, "client_id")?;
        // The stored graph_url is the connector's tenant_url.
        let graph_url = match (text_field(body, "graph_url")?, current) {
            (None, Some(c)) if !body.contains_key("graph_url") => {
                parse_tenant_url(c.tenant_url, "graph_url")?
            }
            _ => url_field(body, None, "graph_url", DEFAULT_GRAPH_URL)?,
        };
        let login_url = url_field(body, stored, "login_url", DEFAULT_LOGIN_URL)?;
        // Not text at all says so; text that is no secret says only that, never echoing it.
        text_field(body, "client_secret")?;
        let secret = secret_field(body, "client_secret", MAX_SECRET)
            .map_err(|_| "client_secret: is not a client secret value".to_owned())?;
        if secret.is_none() && (current.is_none() || body.contains_key("client_secret")) {
            return Err("client_secret: is required".into());
        }
        let mut config = Config::new();
        config.insert("tenant_id".into(), Value::String(tenant_id));
        config.insert("client_id".into(), Value::String(client_id));
        config.insert(
            "login_url".into(),
            Value::String(login_url.as_str().trim_end_matches('/').to_owned()),
        );
        Ok(Configured {
            secret_urls: vec![graph_url.clone(), login_url],
            tenant_url: graph_url,
            config,
            secret,
        })
    }

    fn connect(
        &self,
        settings: Settings,
        env: &Environment,
        on_retry: Option<RetryObserver>,
    ) -> Result<Arc<dyn Connection>, Failure> {
        let config_error = |reason: String| Failure {
            kind: FailureKind::Other,
            reason: format!("the connector configuration is invalid: {reason}"),
        };
        let stored = |name: &str| -> Result<String, Failure> {
            settings
                .config
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| config_error(format!("{name} is missing")))
        };
        let login_url = match settings.config.get("login_url").and_then(Value::as_str) {
            Some(text) => Url::parse(text).map_err(|e| config_error(format!("login_url: {e}")))?,
            None => Url::parse(DEFAULT_LOGIN_URL).map_err(|e| config_error(e.to_string()))?,
        };
        let credentials = Credentials {
            tenant_id: stored("tenant_id")?,
            client_id: stored("client_id")?,
            client_secret: settings.secret,
            login_url,
            graph_url: settings.tenant_url,
        };
        let mut cfg = ClientConfig::new(credentials);
        cfg.extra_roots_pem.clone_from(&env.extra_roots_pem);
        cfg.request_timeout = env.request_timeout;
        cfg.retry_base = env.retry_base;
        cfg.retry_cap = env.retry_cap;
        cfg.max_body_bytes = env.max_body_bytes;
        cfg.refuse_internal_addresses = env.refuse_internal_addresses;
        cfg.on_retry = on_retry.map(|told| {
            http::tell_worker(told, ClientError::human_reason, |e| {
                matches!(e, ClientError::Timeout)
            })
        });
        let client = Client::new(cfg).map_err(|e| failure(&e))?;
        Ok(Arc::new(DefenderConnection::new(client)))
    }

    fn map(&self, record: Box<RawValue>) -> Result<Incident, dossier_source::mapping::Unmapped> {
        dossier_source::mapping::read(record, crate::mapping::map_fields)
    }

    fn identity(&self) -> dossier_source::RecordIdentity {
        IDENTITY
    }

    fn remap_stored(&self, raw: &str) -> Option<Incident> {
        crate::mapping::remap_stored(raw)
    }

    /// Every alert carries its own link (`alertWebUrl`), whose form changed over time
    /// (PRODUCERS.md §1.1): the incident's `console_url` holds it, and none is built here.
    /// Every organisation's alerts come from the same API host: the Entra tenant id names it.
    fn tenant_key(&self, _tenant_url: &str, config: &Config) -> Option<String> {
        let tenant = config.get("tenant_id")?.as_str()?.trim();
        (!tenant.is_empty()).then(|| tenant.to_ascii_lowercase())
    }

    fn console_link(&self, _tenant_url: &str, _record_id: &str) -> Option<String> {
        None
    }

    fn base_url_field(&self) -> &'static str {
        "graph_url"
    }

    fn evidence(&self, raw: &str) -> Vec<dossier_source::Evidence> {
        crate::evidence::evidence(raw)
    }
}

/// What the worker does about a client error, with the operator's words for it.
#[must_use]
pub fn failure(e: &ClientError) -> Failure {
    let kind = match e {
        ClientError::Entra { .. } | ClientError::TokenRefused { .. } => {
            FailureKind::CredentialsRejected
        }
        ClientError::ConsentPending { .. } => FailureKind::ConsentPending,
        ClientError::Forbidden { .. } => FailureKind::PermissionDenied,
        ClientError::RateLimited { retry_after } => FailureKind::RateLimited {
            retry_after: *retry_after,
        },
        ClientError::Rejected { status: 400, .. } => FailureKind::Rejected,
        ClientError::TooLarge { .. } => FailureKind::TooLarge,
        _ => FailureKind::Other,
    };
    Failure {
        kind,
        reason: e.human_reason(),
    }
}

/// The Graph alert update for an analyst's verdict on a closed story (PRODUCERS.md §1.7):
/// always `status: resolved`; malicious is a true positive, benign a false positive,
/// informational expected activity. A suspicious story leaves the classification as it is.
/// The determination is the least specific one Graph allows for the classification: the
/// story does not say which kind of threat it was.
#[must_use]
pub fn graph_verdict(v: Verdict) -> Value {
    match v {
        Verdict::Malicious => json!({
            "status": "resolved", "classification": "truePositive", "determination": "other"
        }),
        Verdict::Benign => json!({
            "status": "resolved", "classification": "falsePositive", "determination": "clean"
        }),
        Verdict::Informational => json!({
            "status": "resolved",
            "classification": "informationalExpectedActivity",
            "determination": "other"
        }),
        Verdict::Suspicious => json!({ "status": "resolved" }),
    }
}

/// Where an alert says its id and its update time.
const IDENTITY: dossier_source::RecordIdentity = dossier_source::RecordIdentity {
    id: "/id",
    updated: "/lastUpdateDateTime",
};

/// A connector's link to its tenant's alerts.
#[derive(Debug, Clone)]
pub struct DefenderConnection {
    client: Client,
}

impl DefenderConnection {
    /// Wraps a client.
    #[must_use]
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Returns the client.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Reads an alert's `lastUpdateDateTime`, the walk's order.
fn last_update(alert: &RawValue) -> Option<DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Stamp {
        #[serde(rename = "lastUpdateDateTime", default)]
        at: Option<Value>,
    }
    let stamp: Stamp = serde_json::from_str(alert.get()).ok()?;
    dossier_domain::time::parse_lenient(stamp.at?.as_str()?)
}

/// Where a walk goes after `page` (PRODUCERS.md §1.4, see [`crate::query`]): nowhere when the
/// page is the last; from the page's highest update time (inclusive) when that moves the
/// bound; along Graph's next link when every alert of a full page shares one instant; and
/// just after that instant when Graph gives no link either.
fn next_cursor(page: &AlertsPage, top: u32) -> Option<Cursor> {
    let full = page.alerts.len() >= top as usize;
    if !full && page.next_link.is_none() {
        return None;
    }
    let stamps: Vec<DateTime<Utc>> = page.alerts.iter().filter_map(|a| last_update(a)).collect();
    let (low, high) = (stamps.iter().min(), stamps.iter().max());
    match (low, high, &page.next_link) {
        (Some(low), Some(high), _) if high > low => Some(Cursor::From(Bound::AtOrAfter(*high))),
        (_, _, Some(link)) => Some(Cursor::Link(link.clone())),
        (_, Some(high), None) => Some(Cursor::From(Bound::After(*high))),
        (_, None, None) => None,
    }
}

/// A page of one alert over the size cap: the alert is named from the response's outline and
/// read past as [`next_cursor`] would go past a page of that one alert (Graph's next link, else
/// just after its update time); a response that does not outline one alert with its update
/// time, or that leads back to the page just asked for, stays the failure it was.
fn over_the_cap(
    asked: Option<&Cursor>,
    limit: u64,
    outline: &dossier_source::outline::Outline,
) -> Result<Page, Failure> {
    let skipped = Unreadable::over_the_cap(outline, "/value", &IDENTITY, limit);
    let stamp = skipped
        .as_ref()
        .and_then(|u| dossier_domain::time::parse_lenient(&u.key.updated));
    let link = outline
        .get("/@odata.nextLink")
        .filter(|l| !l.trim().is_empty());
    let next = match (link, stamp) {
        (Some(link), _) => Some(Cursor::Link(link.to_owned())),
        (None, Some(at)) => Some(Cursor::From(Bound::After(at))),
        (None, None) => None,
    };
    match (skipped, next) {
        (Some(skipped), Some(next)) if Some(&next) != asked => Ok(Page {
            records: Vec::new(),
            next_cursor: Some(next.encode()),
            unreadable: vec![skipped],
        }),
        _ => Err(failure(&ClientError::TooLarge {
            limit,
            outline: Box::default(),
        })),
    }
}

#[async_trait]
impl Connection for DefenderConnection {
    async fn fetch(&self, window: &Window) -> Result<Page, Failure> {
        let top = window.limit.clamp(1, MAX_TOP);
        let from_window = window
            .updated_gt
            .map(Bound::After)
            .or(window.updated_gte.map(Bound::AtOrAfter));
        let cursor = match window.cursor.as_deref() {
            Some(text) => Some(Cursor::decode(text).map_err(|reason| Failure {
                kind: FailureKind::Rejected,
                reason,
            })?),
            None => None,
        };
        let fetched = match &cursor {
            Some(Cursor::Link(link)) => self.client.alerts_link(link).await,
            Some(Cursor::From(bound)) => {
                let q = AlertQuery {
                    bound: Some(*bound),
                    top,
                };
                self.client.alerts(&q).await
            }
            None => {
                let q = AlertQuery {
                    bound: from_window,
                    top,
                };
                self.client.alerts(&q).await
            }
        };
        let page = match fetched {
            Ok(page) => page,
            Err(ClientError::TooLarge { limit, outline }) if top == 1 => {
                return over_the_cap(cursor.as_ref(), limit, &outline);
            }
            Err(e) => return Err(failure(&e)),
        };
        let next = next_cursor(&page, top);
        if next.is_some() && next == cursor {
            return Err(failure(&ClientError::BadResponse(
                "the next page is the one just read: the walk would never end".into(),
            )));
        }
        Ok(Page {
            records: page.alerts,
            next_cursor: next.map(|c| c.encode()),
            unreadable: Vec::new(),
        })
    }

    /// Entra ID does not say when a client secret expires in the token response; reading the
    /// app's `passwordCredentials` would need a directory permission (PRODUCERS.md §1.8).
    async fn credential_expiry(&self) -> Result<Option<DateTime<Utc>>, Failure> {
        Ok(None)
    }

    async fn write_back(&self, record_ids: &[String], verdict: Verdict) -> Result<String, Failure> {
        let body = graph_verdict(verdict);
        for id in record_ids {
            self.client
                .update_alert(id, &body)
                .await
                .map_err(|e| failure(&e))?;
        }
        Ok(describe_update(&body))
    }
}

/// `classification truePositive, determination other and status resolved`.
fn describe_update(body: &Value) -> String {
    let field = |k: &str| body.get(k).and_then(Value::as_str);
    let mut parts: Vec<String> = ["classification", "determination"]
        .into_iter()
        .filter_map(|k| field(k).map(|v| format!("{k} {v}")))
        .collect();
    let status = format!("status {}", field("status").unwrap_or("resolved"));
    if parts.is_empty() {
        return status;
    }
    let last = parts.pop().unwrap_or_default();
    if parts.is_empty() {
        format!("{last} and {status}")
    } else {
        format!("{}, {last} and {status}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// All organisations share the API host: the Entra tenant id tells them apart.
    #[test]
    fn the_tenant_is_the_entra_tenant_whatever_the_host() {
        let config = |t: &str| -> Config {
            serde_json::from_value(serde_json::json!({"tenant_id": t, "client_id": "x"})).unwrap()
        };
        let d = Defender;
        let url = "https://api.securitycenter.microsoft.com";
        let a = d.tenant_key(url, &config("11111111-2222-3333-4444-555555555555"));
        let same = d.tenant_key(
            url,
            &config(
                "11111111-2222-3333-4444-555555555555"
                    .to_uppercase()
                    .as_str(),
            ),
        );
        let other = d.tenant_key(url, &config("99999999-2222-3333-4444-555555555555"));
        assert!(a.is_some());
        assert_eq!(a, same);
        assert_ne!(a, other);
    }

    fn page(stamps: &[&str], link: Option<&str>) -> AlertsPage {
        AlertsPage {
            alerts: stamps
                .iter()
                .map(|s| {
                    RawValue::from_string(format!(r#"{{"lastUpdateDateTime":"{s}"}}"#)).unwrap()
                })
                .collect(),
            next_link: link.map(str::to_owned),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        dossier_domain::time::parse_lenient(s).unwrap()
    }

    #[test]
    fn a_short_page_ends_the_walk() {
        assert_eq!(
            next_cursor(&page(&["2024-01-01T00:00:00.1Z"], None), 2),
            None
        );
    }

    #[test]
    fn a_full_page_goes_on_from_its_highest_time_inclusive() {
        let p = page(
            &[
                "2024-01-01T00:00:00.0000001Z",
                "2024-01-01T00:00:00.0000003Z",
            ],
            Some("https://graph/x"),
        );
        assert_eq!(
            next_cursor(&p, 2),
            Some(Cursor::From(Bound::AtOrAfter(at(
                "2024-01-01T00:00:00.0000003Z"
            ))))
        );
    }

    #[test]
    fn a_full_page_of_one_instant_follows_the_link_or_goes_past_it() {
        let stamps = ["2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00.5Z"];
        assert_eq!(
            next_cursor(&page(&stamps, Some("https://graph/next")), 2),
            Some(Cursor::Link("https://graph/next".into()))
        );
        assert_eq!(
            next_cursor(&page(&stamps, None), 2),
            Some(Cursor::From(Bound::After(at("2024-01-01T00:00:00.5Z"))))
        );
    }

    #[test]
    fn verdicts_become_graph_updates() {
        let m = graph_verdict(Verdict::Malicious);
        assert_eq!(m["classification"], "truePositive");
        assert_eq!(
            describe_update(&m),
            "classification truePositive, determination other and status resolved"
        );
        assert_eq!(
            graph_verdict(Verdict::Benign)["classification"],
            "falsePositive"
        );
        assert_eq!(
            graph_verdict(Verdict::Informational)["classification"],
            "informationalExpectedActivity"
        );
        let s = graph_verdict(Verdict::Suspicious);
        assert!(s.get("classification").is_none());
        assert_eq!(describe_update(&s), "status resolved");
    }

    #[test]
    fn client_errors_become_what_the_worker_does() {
        let secret = ClientError::Entra {
            status: 401,
            error: "invalid_client".into(),
            code: Some(7_000_215),
            description: None,
        };
        assert_eq!(failure(&secret).kind, FailureKind::CredentialsRejected);
        assert_eq!(
            failure(&ClientError::ConsentPending { write: false }).kind,
            FailureKind::ConsentPending
        );
        let forbidden = ClientError::Forbidden {
            code: None,
            message: None,
        };
        assert_eq!(failure(&forbidden).kind, FailureKind::PermissionDenied);
        assert_eq!(failure(&ClientError::Timeout).kind, FailureKind::Other);
        let big = ClientError::TooLarge {
            limit: 1,
            outline: Box::default(),
        };
        assert_eq!(failure(&big).kind, FailureKind::TooLarge, "smaller pages");
        let bad = ClientError::Rejected {
            status: 400,
            code: None,
            message: None,
        };
        assert_eq!(failure(&bad).kind, FailureKind::Rejected);
    }

    fn body(json: &str) -> Config {
        serde_json::from_str(json).unwrap()
    }

    const TENANT: &str = "3ADB963C-8E61-48E8-A06D-6DBB0DACEA39";
    const CLIENT: &str = "734ef928-d74c-4555-8d1b-d942fa0a1a41";

    #[test]
    fn a_create_reads_every_field_with_defaults() {
        let c = Defender
            .configure(
                &body(&format!(
                    r#"{{"tenant_id":"{TENANT}","client_id":"{CLIENT}","client_secret":" s~1 "}}"#
                )),
                None,
            )
            .unwrap();
        assert_eq!(c.tenant_url.as_str(), "https://graph.microsoft.com/");
        let urls: Vec<&str> = c.secret_urls.iter().map(Url::as_str).collect();
        assert_eq!(
            urls,
            [
                "https://graph.microsoft.com/",
                "https://login.microsoftonline.com/"
            ]
        );
        assert_eq!(c.config["tenant_id"], TENANT.to_ascii_lowercase());
        assert_eq!(c.config["client_id"], CLIENT);
        assert_eq!(c.config["login_url"], "https://login.microsoftonline.com");
        assert!(c.config.get("client_secret").is_none());
        assert!(!format!("{c:?}").contains("s~1"));
    }

    #[test]
    fn bad_fields_are_named() {
        for (json, says) in [
            (r#"{"client_id":"x"}"#.to_owned(), "tenant_id: is required"),
            (
                format!(
                    r#"{{"tenant_id":"not-a-guid","client_id":"{CLIENT}","client_secret":"s"}}"#
                ),
                "tenant_id: must be a GUID",
            ),
            (
                format!(
                    r#"{{"tenant_id":"{TENANT}","client_id":"{CLIENT}1","client_secret":"s"}}"#
                ),
                "client_id: must be a GUID",
            ),
            (
                format!(r#"{{"tenant_id":"{TENANT}","client_id":"{CLIENT}"}}"#),
                "client_secret: is required",
            ),
            (
                format!(
                    r#"{{"tenant_id":"{TENANT}","client_id":"{CLIENT}","client_secret":"s","graph_url":"http://g"}}"#
                ),
                "graph_url: must start with https://",
            ),
            (
                format!(
                    r#"{{"tenant_id":"{TENANT}","client_id":"{CLIENT}","client_secret":"s","api_token":"t"}}"#
                ),
                "api_token: not a field of a defender connector",
            ),
        ] {
            let e = Defender.configure(&body(&json), None).unwrap_err();
            assert!(e.starts_with(says), "{json}: {e}");
        }
        let secret = Defender
            .configure(
                &body(&format!(
                    r#"{{"tenant_id":"{TENANT}","client_id":"{CLIENT}","client_secret":"ab\u0007cd"}}"#
                )),
                None,
            )
            .unwrap_err();
        assert!(
            secret.starts_with("client_secret: ") && !secret.contains("ab"),
            "{secret}"
        );
    }

    #[test]
    fn a_change_keeps_what_it_leaves_out() {
        let stored_config = body(&format!(
            r#"{{"tenant_id":"{TENANT}","client_id":"{CLIENT}","login_url":"https://login.microsoftonline.us"}}"#
        ));
        let stored = Stored {
            tenant_url: "https://graph.microsoft.us",
            config: &stored_config,
        };
        let c = Defender.configure(&body("{}"), Some(stored)).unwrap();
        assert_eq!(c.tenant_url.as_str(), "https://graph.microsoft.us/");
        assert_eq!(c.config["login_url"], "https://login.microsoftonline.us");
        assert!(c.secret.is_none());
        let reset = Defender
            .configure(
                &body(r#"{"login_url":null,"client_secret":"new"}"#),
                Some(stored),
            )
            .unwrap();
        assert_eq!(
            reset.config["login_url"],
            "https://login.microsoftonline.com"
        );
    }

    #[test]
    fn the_console_link_is_the_alerts_own() {
        assert_eq!(
            Defender.console_link("https://graph.microsoft.com", "da1"),
            None
        );
        let raw = RawValue::from_string(
            r#"{"id":"da1","createdDateTime":"2024-01-01T00:00:00Z","alertWebUrl":"https://security.microsoft.com/alerts/da1?tid=t"}"#
                .to_owned(),
        )
        .unwrap();
        let incident = Defender.map(raw).unwrap();
        assert_eq!(
            incident.console_url.as_deref(),
            Some("https://security.microsoft.com/alerts/da1?tid=t")
        );
    }
}
