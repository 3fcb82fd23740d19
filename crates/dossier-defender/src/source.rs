//! Microsoft Defender for Endpoint as a [`Source`]: what the generic connector worker drives.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dossier_domain::story::Verdict;
use dossier_source::{Connection, Failure, FailureKind, Page, Window};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::client::{AlertsPage, Client, ClientError};
use crate::query::{AlertQuery, Bound, Cursor, MAX_TOP};

/// The Defender connector kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct Defender;

/// What the worker does about a client error, with the operator's words for it.
#[must_use]
pub fn failure(e: &ClientError) -> Failure {
    let kind = match e {
        ClientError::Entra { .. } | ClientError::TokenRefused { .. } => {
            FailureKind::CredentialsRejected
        }
        ClientError::ConsentPending { .. } => FailureKind::PermissionDenied,
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
        let page = match &cursor {
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
        }
        .map_err(|e| failure(&e))?;
        let next = next_cursor(&page, top);
        if next.is_some() && next == cursor {
            return Err(failure(&ClientError::BadResponse(
                "the next page is the one just read: the walk would never end".into(),
            )));
        }
        Ok(Page {
            records: page.alerts,
            next_cursor: next.map(|c| c.encode()),
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

    fn page(stamps: &[&str], link: Option<&str>) -> AlertsPage {
        AlertsPage {
            alerts: stamps
                .iter()
                .map(|s| RawValue::from_string(format!(r#"{{"lastUpdateDateTime":"{s}"}}"#)).unwrap())
                .collect(),
            next_link: link.map(str::to_owned),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        dossier_domain::time::parse_lenient(s).unwrap()
    }

    #[test]
    fn a_short_page_ends_the_walk() {
        assert_eq!(next_cursor(&page(&["2024-01-01T00:00:00.1Z"], None), 2), None);
    }

    #[test]
    fn a_full_page_goes_on_from_its_highest_time_inclusive() {
        let p = page(
            &["2024-01-01T00:00:00.0000001Z", "2024-01-01T00:00:00.0000003Z"],
            Some("https://graph/x"),
        );
        assert_eq!(
            next_cursor(&p, 2),
            Some(Cursor::From(Bound::AtOrAfter(at("2024-01-01T00:00:00.0000003Z"))))
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
        assert_eq!(graph_verdict(Verdict::Benign)["classification"], "falsePositive");
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
            FailureKind::PermissionDenied
        );
        let forbidden = ClientError::Forbidden {
            code: None,
            message: None,
        };
        assert_eq!(failure(&forbidden).kind, FailureKind::PermissionDenied);
        assert_eq!(failure(&ClientError::Timeout).kind, FailureKind::Other);
        let bad = ClientError::Rejected {
            status: 400,
            code: None,
            message: None,
        };
        assert_eq!(failure(&bad).kind, FailureKind::Rejected);
    }
}
