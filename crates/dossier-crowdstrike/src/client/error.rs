//! What can go wrong talking to a Falcon cloud, and what the worker does about it.
//!
//! No variant ever holds the client secret or a token: messages come from status codes, the
//! API's `errors[].message` (PRODUCERS.md §2.6) and transport errors stripped of their URL.

use std::time::Duration;

use dossier_source::{Failure, FailureKind};

/// A failed call to the Falcon API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// `POST /oauth2/token` refused the client id or secret (403 "Failed to issue access
    /// token", 400 "Failed to generate access token", §2.8), or a freshly issued token was
    /// refused too (401 "access denied, invalid bearer token").
    #[error("client id or secret rejected (http {status}{})", said(message.as_deref()))]
    CredentialsRejected {
        status: u16,
        message: Option<String>,
    },
    /// The token response's `X-Cs-Region` names another cloud than the configured one
    /// (§2.3): the API client lives there, and its secret is only ever sent to the configured
    /// host, so the operator must choose that cloud.
    #[error("the api client belongs to the {region} cloud, not {configured}")]
    WrongCloud { region: String, configured: String },
    /// 403 "access denied, authorization failed" on a valid token: a missing scope, or the IP
    /// allowlist (§2.3, §2.8). `write` when the refused call was a write-back.
    #[error("access denied (http 403{})", said(message.as_deref()))]
    Forbidden {
        message: Option<String>,
        write: bool,
    },
    /// 429 on every try, or an `X-Ratelimit-Retryafter` later than the client waits (§2.5).
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx on every try.
    #[error("server error (http {status})")]
    Server { status: u16 },
    /// 404 or 405 on a path the client knows: the vendor retired it, as it did `/detects/*`
    /// on 2025-09-30 (§2.1, [I8]).
    #[error("endpoint {path} retired by the vendor (http {status})")]
    Retired { status: u16, path: String },
    /// Another 4xx: the request itself was refused (offset+limit past 10,000, a filter the API
    /// does not take, too many ids).
    #[error("request rejected (http {status}{})", said(message.as_deref()))]
    Rejected {
        status: u16,
        message: Option<String>,
    },
    /// No complete response within the request timeout, on every try.
    #[error("request timed out")]
    Timeout,
    /// The TLS handshake failed.
    #[error("tls failure: {0}")]
    Tls(String),
    /// No connection could be made or kept, on every try.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The response body exceeded the configured maximum.
    /// `outline` holds the short values of the whole response, scanned as it streamed past:
    /// the record of a page of one is named from it and read past.
    #[error("response larger than {limit} bytes")]
    TooLarge {
        limit: u64,
        outline: Box<dossier_source::outline::Outline>,
    },
    /// A success status with a body that is not what the endpoint returns.
    #[error("unexpected response: {0}")]
    BadResponse(String),
    /// The client configuration is unusable.
    #[error("invalid client configuration: {0}")]
    Config(String),
}

fn said(message: Option<&str>) -> String {
    message.map(|m| format!(": {m}")).unwrap_or_default()
}

impl ClientError {
    /// Returns a sentence for an operator: what happened and what to do about it.
    #[must_use]
    pub fn human_reason(&self) -> String {
        match self {
            ClientError::CredentialsRejected { status, message } => format!(
                "client id or secret rejected (HTTP {status}{}) — check the API client's id and \
                 secret in the Falcon console (Support and resources > API clients and keys), \
                 or reset its secret and save the connector with the new one",
                said(message.as_deref())
            ),
            ClientError::WrongCloud { region, .. } => {
                format!("this API client belongs to the {region} cloud; choose cloud {region}")
            }
            ClientError::Forbidden {
                message,
                write: false,
            } => format!(
                "the API client lacks the Alerts: Read scope, or the IP allowlist blocks this \
                 server (HTTP 403{}) — in the Falcon console (Support and resources > API \
                 clients and keys) edit the client and tick Alerts: Read, or allow this \
                 server's address",
                said(message.as_deref())
            ),
            ClientError::Forbidden {
                message,
                write: true,
            } => format!(
                "the API client lacks the Alerts: Write scope needed to write verdicts back \
                 (HTTP 403{}) — in the Falcon console (Support and resources > API clients and \
                 keys) edit the client and tick Alerts: Write, or turn write-back off",
                said(message.as_deref())
            ),
            ClientError::RateLimited {
                retry_after: Some(d),
            } => format!(
                "CrowdStrike is rate limiting requests — retrying in {}s",
                d.as_secs().max(1)
            ),
            ClientError::RateLimited { retry_after: None } => {
                "CrowdStrike is rate limiting requests — retrying later".to_owned()
            }
            ClientError::Server { status } => format!(
                "the Falcon API answered with a server error (HTTP {status}) — usually \
                 transient, retrying later"
            ),
            ClientError::Retired { status, path } => format!(
                "endpoint retired by the vendor (HTTP {status} on {path}) — this version of \
                 Dossier needs updating"
            ),
            ClientError::Rejected { status, message } => format!(
                "the Falcon API refused the request (HTTP {status}{})",
                said(message.as_deref())
            ),
            ClientError::Timeout => {
                "the Falcon API did not answer in time — check the cloud and network path".into()
            }
            ClientError::Tls(e) => format!("TLS failure: {e} — check the base URL and trust roots"),
            ClientError::Unreachable(e) => format!("the Falcon API is unreachable: {e}"),
            ClientError::TooLarge { limit, .. } => {
                format!("the Falcon API sent a response larger than {limit} bytes")
            }
            ClientError::BadResponse(e) => format!(
                "the server sent a response that is not the Falcon API's: {e} — check the \
                 cloud or base URL"
            ),
            ClientError::Config(e) => format!("the connector configuration is invalid: {e}"),
        }
    }

    /// Returns what the worker does about the error, with the operator's words for it.
    #[must_use]
    pub fn failure(&self) -> Failure {
        let kind = match self {
            ClientError::CredentialsRejected { .. } | ClientError::WrongCloud { .. } => {
                FailureKind::CredentialsRejected
            }
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
            reason: self.human_reason(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        e.failure()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_becomes_what_the_worker_does() {
        let cases = [
            (
                ClientError::CredentialsRejected { status: 403, message: None },
                FailureKind::CredentialsRejected,
                "client id or secret rejected",
            ),
            (
                ClientError::WrongCloud { region: "eu-1".into(), configured: "us-1".into() },
                FailureKind::CredentialsRejected,
                "this API client belongs to the eu-1 cloud; choose cloud eu-1",
            ),
            (
                ClientError::Forbidden { message: None, write: false },
                FailureKind::PermissionDenied,
                "the API client lacks the Alerts: Read scope, or the IP allowlist blocks this server",
            ),
            (
                ClientError::Rejected { status: 400, message: None },
                FailureKind::Rejected,
                "the Falcon API refused the request (HTTP 400)",
            ),
            (
                ClientError::Rejected { status: 413, message: None },
                FailureKind::Other,
                "the Falcon API refused the request (HTTP 413)",
            ),
            (
                ClientError::Retired { status: 404, path: "/detects/queries/detects/v1".into() },
                FailureKind::Other,
                "endpoint retired by the vendor (HTTP 404 on /detects/queries/detects/v1)",
            ),
            (
                ClientError::RateLimited { retry_after: Some(Duration::from_secs(7)) },
                FailureKind::RateLimited { retry_after: Some(Duration::from_secs(7)) },
                "CrowdStrike is rate limiting requests — retrying in 7s",
            ),
            (
                ClientError::TooLarge {
                    limit: 1024,
                    outline: Box::default(),
                },
                FailureKind::TooLarge,
                "the Falcon API sent a response larger than 1024 bytes",
            ),
        ];
        for (error, kind, starts) in cases {
            let f = error.failure();
            assert_eq!(f.kind, kind, "{error}");
            assert!(f.reason.starts_with(starts), "{}", f.reason);
        }
    }
}
