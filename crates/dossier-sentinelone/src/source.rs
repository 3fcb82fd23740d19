//! SentinelOne as a [`Source`]: what the generic connector worker drives.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dossier_domain::story::Verdict;
use dossier_domain::{Incident, Producer};
use dossier_source::http;
use dossier_source::{
    only_fields, parse_tenant_url, secret_field, text_field, Config, Configured, Connection,
    Environment, Failure, FailureKind, Field, Labels, Outcome, Page, ResponseAction, ResponseScope,
    RetryObserver, Settings, Source, Stored, Target, Unreadable, VendorNotes, Window,
};
use serde_json::value::RawValue;

use crate::client::{Client, ClientConfig, ClientError};
use crate::query::{SortBy, SortOrder, ThreatQuery, MAX_PAGE_SIZE};

/// Longest API token accepted; real ones are a few hundred characters.
const MAX_TOKEN: usize = 4096;

/// A SentinelOne connector's fields (PRODUCT.md, `POST /api/v1/connectors`).
const FIELDS: [Field; 2] = [
    Field {
        name: "tenant_url",
        label: "Tenant URL",
        help: "The address of your SentinelOne management console, as in the browser's address \
               bar when you sign in.",
        example: "https://usea1-partners.sentinelone.net",
        secret: false,
        required: true,
        choices: &[],
    },
    Field {
        name: "api_token",
        label: "API token",
        help: "Create a service user in Settings › Users › Service Users (role Viewer, or IR Team \
               to write verdicts back), then copy its API token; it is shown only once.",
        example: "",
        secret: true,
        required: true,
        choices: &[],
    },
];

/// The SentinelOne connector kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct SentinelOne;

/// The `GET /web/api/v2.1/threats` request a walk's window asks for: `updatedAt` ascending
/// (SENTINELONE.md §6.2), the window's bound and cursor, at most 1000 a page (§1.2).
#[must_use]
pub fn threat_query(w: &Window) -> ThreatQuery {
    ThreatQuery {
        limit: w.limit.clamp(1, MAX_PAGE_SIZE),
        cursor: w.cursor.clone(),
        updated_at_gte: w.updated_gte,
        updated_at_gt: w.updated_gt,
        sort_by: Some(SortBy::UpdatedAt),
        sort_order: Some(SortOrder::Asc),
        ..ThreatQuery::default()
    }
}

/// SentinelOne's analyst verdict for Dossier's (SentinelOne has `true_positive`,
/// `false_positive`, `suspicious` and `undefined`; an informational story is not a threat).
#[must_use]
pub fn s1_verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Malicious => "true_positive",
        Verdict::Suspicious => "suspicious",
        Verdict::Benign | Verdict::Informational => "false_positive",
    }
}

/// What the worker does about a client error, with the operator's words for it.
#[must_use]
pub fn failure(e: &ClientError) -> Failure {
    let kind = match e {
        ClientError::Unauthorized { .. } => FailureKind::CredentialsRejected,
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

impl Source for SentinelOne {
    fn kind(&self) -> &'static str {
        "sentinelone"
    }

    fn producer(&self) -> Producer {
        crate::producer()
    }

    fn labels(&self) -> Labels {
        Labels {
            vendor: crate::producer().vendor(),
            record_name: "threat",
        }
    }

    fn fields(&self) -> &'static [Field] {
        &FIELDS
    }

    fn configure(&self, body: &Config, current: Option<Stored<'_>>) -> Result<Configured, String> {
        only_fields(body, "sentinelone", &FIELDS)?;
        let url = match (text_field(body, "tenant_url")?, current) {
            (Some(url), _) => url,
            (None, Some(stored)) => stored.tenant_url.to_owned(),
            (None, None) => return Err("tenant_url: is required: an https:// address".into()),
        };
        let tenant_url = parse_tenant_url(&url, "tenant_url")?;
        // Not text at all says so; text that is no token says only that, never echoing it.
        text_field(body, "api_token")?;
        let secret = secret_field(body, "api_token", MAX_TOKEN)
            .map_err(|_| "api_token: is not a SentinelOne API token".to_owned())?;
        if secret.is_none() && (current.is_none() || body.contains_key("api_token")) {
            return Err("api_token: is required".into());
        }
        Ok(Configured {
            secret_urls: vec![tenant_url.clone()],
            tenant_url,
            config: Config::new(),
            secret,
        })
    }

    fn connect(
        &self,
        settings: Settings,
        env: &Environment,
        on_retry: Option<RetryObserver>,
    ) -> Result<Arc<dyn Connection>, Failure> {
        let mut cfg = ClientConfig::new(settings.tenant_url, settings.secret);
        cfg.extra_roots_pem.clone_from(&env.extra_roots_pem);
        cfg.request_timeout = env.request_timeout;
        cfg.backoff_base = env.retry_base;
        cfg.backoff_cap = env.retry_cap;
        cfg.max_body_bytes = env.max_body_bytes;
        cfg.refuse_internal_addresses = env.refuse_internal_addresses;
        cfg.on_retry = on_retry.map(|told| {
            http::tell_worker(told, ClientError::human_reason, |e| {
                matches!(e, ClientError::Timeout)
            })
        });
        let client = Client::new(cfg).map_err(|e| failure(&e))?;
        Ok(Arc::new(Tenant { client }))
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

    fn console_link(&self, tenant_url: &str, record_id: &str) -> Option<String> {
        let id: String = url::form_urlencoded::byte_serialize(record_id.as_bytes()).collect();
        Some(format!(
            "{}/incidents/threats/{id}/overview",
            tenant_url.trim_end_matches('/')
        ))
    }

    fn reads_vendor_notes(&self) -> bool {
        true
    }
}

/// A page of one threat over the size cap: the threat is named from the response's outline
/// and read past with the page's cursor; a response that does not outline one threat, or
/// whose cursor is the one asked with, stays the failure it was.
fn over_the_cap(
    window: &Window,
    limit: u64,
    outline: &dossier_source::outline::Outline,
) -> Result<Page, Failure> {
    let next_cursor = outline
        .get("/pagination/nextCursor")
        .map(str::trim)
        .filter(|c| !c.is_empty() && *c != "null")
        .map(str::to_owned);
    let skipped = Unreadable::over_the_cap(outline, "/data", &IDENTITY, limit)
        .filter(|_| next_cursor.is_none() || next_cursor != window.cursor);
    let Some(skipped) = skipped else {
        return Err(failure(&ClientError::TooLarge {
            limit,
            outline: Box::default(),
        }));
    };
    Ok(Page {
        records: Vec::new(),
        next_cursor,
        unreadable: vec![skipped],
    })
}

/// Where a threat says its id and its update time.
const IDENTITY: dossier_source::RecordIdentity = dossier_source::RecordIdentity {
    id: "/id",
    updated: "/threatInfo/updatedAt",
};

/// A connector's link to its SentinelOne tenant.
struct Tenant {
    client: Client,
}

#[async_trait]
impl Connection for Tenant {
    async fn fetch(&self, window: &Window) -> Result<Page, Failure> {
        let page = match self.client.threats_page(&threat_query(window)).await {
            Ok(page) => page,
            Err(ClientError::TooLarge { limit, outline }) if window.limit == 1 => {
                return over_the_cap(window, limit, &outline);
            }
            Err(e) => return Err(failure(&e)),
        };
        Ok(Page {
            records: page.threats,
            next_cursor: page.next_cursor,
            unreadable: Vec::new(),
        })
    }

    async fn credential_expiry(&self) -> Result<Option<DateTime<Utc>>, Failure> {
        match self.client.token_details().await {
            Ok(d) => Ok(d.expires_at),
            Err(e) => Err(failure(&e)),
        }
    }

    async fn write_back(&self, record_ids: &[String], verdict: Verdict) -> Result<String, Failure> {
        let sent = s1_verdict(verdict);
        self.client
            .set_analyst_verdict(record_ids, sent)
            .await
            .map_err(|e| failure(&e))?;
        self.client
            .set_incident_status(record_ids, "resolved")
            .await
            .map_err(|e| failure(&e))?;
        Ok(format!("verdict {sent} and status resolved"))
    }

    async fn respond(
        &self,
        action: ResponseAction,
        scope: ResponseScope,
        targets: &[Target],
    ) -> Result<Vec<Outcome>, Failure> {
        // One call per threat (per device for the network actions), so that each threat has
        // the tenant's own answer. A failure that is not about the one threat (the tenant is
        // down, the token refused) ends the run: the rest are reported as not tried.
        let mut answers: std::collections::HashMap<String, Result<u64, ClientError>> =
            std::collections::HashMap::new();
        let mut stopped: Option<String> = None;
        let mut outcomes = Vec::with_capacity(targets.len());
        for t in targets {
            let key = if action.on_devices() {
                let Some(d) = &t.device_id else {
                    outcomes.push(Outcome {
                        record_id: t.record_id.clone(),
                        ok: false,
                        detail: "the threat names no agent to act on".into(),
                    });
                    continue;
                };
                d.clone()
            } else {
                t.record_id.clone()
            };
            if let Some(reason) = &stopped {
                outcomes.push(Outcome {
                    record_id: t.record_id.clone(),
                    ok: false,
                    detail: format!("not tried: {reason}"),
                });
                continue;
            }
            if !answers.contains_key(&key) {
                let answer = self.act(action, scope, &key).await;
                if let Err(e) = &answer {
                    if !matches!(e, ClientError::Rejected { .. }) {
                        stopped = Some(refusal(action, e));
                    }
                }
                answers.insert(key.clone(), answer);
            }
            outcomes.push(match &answers[&key] {
                Ok(0) => Outcome {
                    record_id: t.record_id.clone(),
                    ok: false,
                    detail: "SentinelOne changed nothing (affected 0): the threat or its agent \
                             is gone or outside the token's scope"
                        .into(),
                },
                Ok(n) => Outcome {
                    record_id: t.record_id.clone(),
                    ok: true,
                    detail: if action.on_devices() {
                        format!("affected {n} (agent {key})")
                    } else {
                        format!("affected {n}")
                    },
                },
                Err(e) => Outcome {
                    record_id: t.record_id.clone(),
                    ok: false,
                    detail: refusal(action, e),
                },
            });
        }
        Ok(outcomes)
    }

    async fn vendor_notes(&self, record_id: &str) -> Result<Option<VendorNotes>, Failure> {
        self.client
            .threat_notes(record_id)
            .await
            .map_err(|e| failure(&e))
    }
}

impl Tenant {
    /// Sends one action for one threat (or one agent).
    async fn act(
        &self,
        action: ResponseAction,
        scope: ResponseScope,
        id: &str,
    ) -> Result<u64, ClientError> {
        let ids = [id.to_owned()];
        let c = &self.client;
        match action {
            ResponseAction::Kill => c.mitigate(&ids, "kill").await,
            ResponseAction::Quarantine => c.mitigate(&ids, "quarantine").await,
            ResponseAction::Remediate => c.mitigate(&ids, "remediate").await,
            ResponseAction::Rollback => c.mitigate(&ids, "rollback-remediation").await,
            ResponseAction::Disconnect => c.agents_network(&ids, "disconnect").await,
            ResponseAction::Reconnect => c.agents_network(&ids, "connect").await,
            ResponseAction::Blocklist => c.add_to_blocklist(&ids, scope.as_str()).await,
            ResponseAction::MarkTruePositive => c.set_analyst_verdict(&ids, "true_positive").await,
            ResponseAction::MarkFalsePositive => {
                c.set_analyst_verdict(&ids, "false_positive").await
            }
        }
    }
}

/// Why the tenant did not take an action, in words that say what to change. A 403 names the
/// missing write permission: the token reads threats (the connector polls), but its user's role
/// may not act, and no read-only call tells that in advance.
fn refusal(action: ResponseAction, e: &ClientError) -> String {
    match e {
        ClientError::Forbidden { code, .. } => format!(
            "SentinelOne refused (403{}): the API token's user may read threats but not {} — \
             give the service user a role that may take response actions (such as IR Team or \
             SOC) on the threat's site, or turn the connector's \"response\" switch off",
            code.map(|c| format!(", code {c}")).unwrap_or_default(),
            action.verb()
        ),
        other => other.human_reason(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn console_links_escape_the_threat_id() {
        let s1 = SentinelOne;
        assert_eq!(
            s1.console_link("https://t.sentinelone.net/", "123")
                .unwrap(),
            "https://t.sentinelone.net/incidents/threats/123/overview"
        );
        assert!(s1
            .console_link("https://t", "1/../2")
            .unwrap()
            .ends_with("1%2F..%2F2/overview"));
    }

    #[test]
    fn client_errors_become_what_the_worker_does() {
        let unauthorized = ClientError::Unauthorized {
            code: None,
            title: None,
        };
        assert_eq!(
            failure(&unauthorized).kind,
            FailureKind::CredentialsRejected
        );
        assert!(failure(&unauthorized).needs_operator());
        let forbidden = ClientError::Forbidden {
            code: None,
            title: None,
        };
        assert_eq!(failure(&forbidden).kind, FailureKind::PermissionDenied);
        let stale_cursor = ClientError::Rejected {
            status: 400,
            code: None,
            title: None,
        };
        assert_eq!(failure(&stale_cursor).kind, FailureKind::Rejected);
        let gone = ClientError::Rejected {
            status: 404,
            code: None,
            title: None,
        };
        assert_eq!(failure(&gone).kind, FailureKind::Other);
        assert!(!failure(&ClientError::Timeout).needs_operator());
        let big = ClientError::TooLarge {
            limit: 1,
            outline: Box::default(),
        };
        assert_eq!(failure(&big).kind, FailureKind::TooLarge, "smaller pages");
    }

    fn body(json: &str) -> Config {
        serde_json::from_str(json).unwrap_or_default()
    }

    #[test]
    fn secrets_are_checked_without_being_echoed() {
        let s1 = SentinelOne;
        let ok = s1.configure(
            &body(r#"{"tenant_url":"https://a.example.net/x","api_token":"  abc  "}"#),
            None,
        );
        assert_eq!(
            ok.as_ref().map(|c| c.tenant_url.as_str()),
            Ok("https://a.example.net/")
        );
        let blank = s1.configure(
            &body(r#"{"tenant_url":"https://a.example.net","api_token":" "}"#),
            None,
        );
        assert_eq!(blank.err().as_deref(), Some("api_token: is required"));
        let bad = s1
            .configure(
                &body(r#"{"tenant_url":"https://a.example.net","api_token":"abc\u0007def"}"#),
                None,
            )
            .err()
            .unwrap_or_default();
        assert!(bad.starts_with("api_token: "), "{bad}");
        assert!(!bad.contains("abc"), "{bad}");
    }

    #[test]
    fn a_change_keeps_what_it_leaves_out_and_refuses_other_kinds_fields() {
        let s1 = SentinelOne;
        let config = Config::new();
        let stored = Stored {
            tenant_url: "https://a.example.net",
            config: &config,
        };
        let kept = s1.configure(&body("{}"), Some(stored));
        assert!(kept.as_ref().is_ok_and(|c| c.secret.is_none()), "{kept:?}");
        let foreign = s1.configure(&body(r#"{"client_id":"x"}"#), Some(stored));
        assert!(foreign
            .err()
            .unwrap_or_default()
            .starts_with("client_id: not a field"));
    }
}
