//! SentinelOne as a [`Source`]: what the generic connector worker drives.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dossier_domain::story::Verdict;
use dossier_domain::{Incident, Producer};
use dossier_source::{
    Connection, Environment, Failure, FailureKind, Labels, Page, RetryObserver, Retrying, Settings,
    Source, Window,
};
use secrecy::SecretString;
use serde_json::value::RawValue;

use crate::client::{Client, ClientConfig, ClientError};
use crate::query::{SortBy, SortOrder, ThreatQuery, MAX_PAGE_SIZE};

/// Longest API token accepted; real ones are a few hundred characters.
const MAX_TOKEN: usize = 4096;

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
            tenant_url_example: "https://usea1-partners.sentinelone.net",
            secret_name: "API token",
            secret_noun: "token",
            secret_hint: "a service-user token",
            record_name: "threat",
        }
    }

    fn check_secret(&self, secret: &str) -> Result<SecretString, String> {
        let t = secret.trim();
        if t.is_empty() {
            return Err("is required".into());
        }
        if t.len() > MAX_TOKEN || t.chars().any(char::is_control) {
            return Err("is not a SentinelOne API token".into());
        }
        Ok(SecretString::from(t.to_owned()))
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
        cfg.on_retry = on_retry.map(|told| -> crate::client::RetryObserver {
            Arc::new(move |r: &crate::client::Retrying| {
                told(&Retrying {
                    reason: r.error.human_reason(),
                    retry: r.retry,
                    of: r.of,
                    failing_for: r.failing_for,
                });
            })
        });
        let client = Client::new(cfg).map_err(|e| failure(&e))?;
        Ok(Arc::new(Tenant { client }))
    }

    fn map(&self, record: Box<RawValue>) -> Result<Incident, String> {
        crate::mapping::map_owned_threat(record).map_err(|e| e.to_string())
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
}

/// A connector's link to its SentinelOne tenant.
struct Tenant {
    client: Client,
}

#[async_trait]
impl Connection for Tenant {
    async fn fetch(&self, window: &Window) -> Result<Page, Failure> {
        let page = self
            .client
            .threats_page(&threat_query(window))
            .await
            .map_err(|e| failure(&e))?;
        Ok(Page {
            records: page.threats,
            next_cursor: page.next_cursor,
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
    }

    #[test]
    fn secrets_are_checked_without_being_echoed() {
        let s1 = SentinelOne;
        assert!(s1.check_secret("  abc  ").is_ok());
        assert_eq!(s1.check_secret(" ").err().as_deref(), Some("is required"));
        let bad = s1.check_secret("abc\u{7}def").err().unwrap_or_default();
        assert!(!bad.contains("abc"), "{bad}");
    }
}
