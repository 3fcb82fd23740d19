//! What can go wrong talking to a tenant, in terms an operator can act on.
//!
//! No variant ever holds the API token: messages come from status codes, the API's error
//! envelope and transport errors stripped of their URL.

use std::time::Duration;

/// A failed call to the SentinelOne Management API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// 401: the token is wrong, expired or revoked (SENTINELONE.md §6.7). Never retried.
    #[error("api token rejected (401{})", describe(*code, title.as_deref()))]
    Unauthorized {
        code: Option<u64>,
        title: Option<String>,
    },
    /// 403: the token's user lacks a permission or the scope. Never retried.
    #[error("api token lacks permissions (403{})", describe(*code, title.as_deref()))]
    Forbidden {
        code: Option<u64>,
        title: Option<String>,
    },
    /// 429 on every try, or a `Retry-After` longer than the client waits.
    #[error("rate limited by the tenant{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx on every try.
    #[error("tenant server error (http {status}{})", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    Server { status: u16, code: Option<u64> },
    /// Another 4xx: the request was refused (bad parameter, stale cursor, unknown route).
    #[error("request rejected (http {status}{})", describe(*code, title.as_deref()))]
    Rejected {
        status: u16,
        code: Option<u64>,
        title: Option<String>,
    },
    /// `POST /users/api-token-details` refused to describe the token (some service-user tokens
    /// cannot be introspected, §3): the expiry is unknown, the token may still be fine.
    #[error("token introspection unavailable (http {status}{})", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    IntrospectionUnavailable { status: u16, code: Option<u64> },
    /// No complete response within the request timeout, on every try.
    #[error("request timed out")]
    Timeout,
    /// The TLS handshake failed (certificate not trusted, wrong host, not TLS at all).
    #[error("tls failure: {0}")]
    Tls(String),
    /// No connection could be made or kept (DNS, refused, reset), on every try.
    #[error("tenant unreachable: {0}")]
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

fn describe(code: Option<u64>, title: Option<&str>) -> String {
    match (code, title) {
        (Some(c), Some(t)) => format!(" {t}, code {c}"),
        (Some(c), None) => format!(", code {c}"),
        (None, Some(t)) => format!(" {t}"),
        (None, None) => String::new(),
    }
}

impl ClientError {
    /// Returns a stable machine-readable name for the failure, for the API and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Unauthorized { .. } => "bad_token",
            ClientError::Forbidden { .. } => "insufficient_permissions",
            ClientError::RateLimited { .. } => "rate_limited",
            ClientError::Server { .. } => "tenant_error",
            ClientError::Rejected { .. } => "rejected",
            ClientError::IntrospectionUnavailable { .. } => "introspection_unavailable",
            ClientError::Timeout => "timeout",
            ClientError::Tls(_) => "tls",
            ClientError::Unreachable(_) => "unreachable",
            ClientError::TooLarge { .. } => "too_large",
            ClientError::BadResponse(_) => "bad_response",
            ClientError::Config(_) => "config",
        }
    }

    /// Returns a sentence for an operator: what happened and what to do about it.
    #[must_use]
    pub fn human_reason(&self) -> String {
        match self {
            ClientError::Unauthorized { code, title } => format!(
                "the API token was rejected (401 {}) — check it or create a new service-user token",
                code_title(*code, title.as_deref(), "Authentication Failed")
            ),
            ClientError::Forbidden { code, title } => format!(
                "the API token is valid but lacks permission (403 {}) — give its user the \
                 Threats view permission on the account or site",
                code_title(*code, title.as_deref(), "Insufficient permissions")
            ),
            ClientError::RateLimited {
                retry_after: Some(d),
            } => format!(
                "the tenant is rate limiting requests — retrying in {}s",
                d.as_secs().max(1)
            ),
            ClientError::RateLimited { retry_after: None } => {
                "the tenant is rate limiting requests — retrying later".to_owned()
            }
            ClientError::Server { status, .. } => format!(
                "the tenant answered with a server error (HTTP {status}) — usually transient, \
                 retrying later"
            ),
            ClientError::Rejected {
                status,
                code,
                title,
            } => format!(
                "the tenant refused the request (HTTP {status}{})",
                describe(*code, title.as_deref())
            ),
            ClientError::IntrospectionUnavailable { status, .. } => {
                format!("the token's expiry could not be read (HTTP {status}) — expiry unknown")
            }
            ClientError::Timeout => {
                "the tenant did not answer in time — check the URL and network path".to_owned()
            }
            ClientError::Tls(e) => {
                format!("TLS failure: {e} — check the tenant URL and trust roots")
            }
            ClientError::Unreachable(e) => format!("tenant unreachable: {}", plain_cause(e)),
            ClientError::TooLarge { limit, .. } => {
                format!("the tenant sent a response larger than {limit} bytes")
            }
            ClientError::BadResponse(e) if e.starts_with("response was cut off") => format!(
                "the tenant's answers kept being cut off before their end ({e}) — usually a \
                 network or proxy fault; retrying later"
            ),
            ClientError::BadResponse(e) => format!(
                "the tenant sent a response that is not the SentinelOne API's: {e} — check the \
                 tenant URL"
            ),
            ClientError::Config(e) => format!("the connector configuration is invalid: {e}"),
        }
    }

    /// Tells whether the token itself was refused (only 401). Every other failure of
    /// [`crate::Client::token_details`] means "expiry unknown".
    #[must_use]
    pub fn is_token_rejected(&self) -> bool {
        matches!(self, ClientError::Unauthorized { .. })
    }

    /// Tells whether trying again later may succeed without anyone changing anything.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::RateLimited { .. }
                | ClientError::Server { .. }
                | ClientError::Timeout
                | ClientError::Unreachable(_)
        )
    }
}

/// What an operator needs from a connection failure's error chain: the cause in plain words
/// where it is a common one, else the chain without the links libraries append to it.
fn plain_cause(chain: &str) -> String {
    use super::transport::{mentions, DROPPED_CONNECTION};
    let has = |needles: &[&str]| mentions(chain, needles);
    let without_links = || chain.split(": https://").next().unwrap_or(chain).to_owned();
    if has(&["internal address"]) {
        // The address guard's own sentence says what to do; keep it whole.
        without_links()
    } else if has(DROPPED_CONNECTION) {
        "it closed the connection before answering — retrying; check the network path if it lasts"
            .into()
    } else if has(&["connection refused"]) {
        "the connection was refused — check the URL's host and port".into()
    } else if has(&[
        "dns error",
        "failed to lookup",
        "name or service not known",
        "no such host",
    ]) {
        "its host name does not resolve — check the URL".into()
    } else if has(&["network is unreachable", "no route to host"]) {
        "there is no network route to it — check the network path".into()
    } else {
        without_links()
    }
}

fn code_title(code: Option<u64>, title: Option<&str>, default_title: &str) -> String {
    match code {
        Some(c) => format!("{}, code {c}", title.unwrap_or(default_title)),
        None => title.unwrap_or(default_title).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_api_code_and_title() {
        let e = ClientError::Unauthorized {
            code: Some(4_010_010),
            title: Some("Authentication Failed".into()),
        };
        assert_eq!(
            e.to_string(),
            "api token rejected (401 Authentication Failed, code 4010010)"
        );
        assert_eq!(e.kind(), "bad_token");
        assert!(e.human_reason().starts_with(
            "the API token was rejected (401 Authentication Failed, code 4010010) — check it"
        ));
        let e = ClientError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(e.to_string(), "rate limited by the tenant, retry after 3s");
        assert!(e.is_transient());
        assert_eq!(
            ClientError::Unreachable("x".into()).human_reason(),
            "tenant unreachable: x"
        );
        // The common causes in plain words, without the chain's links.
        for (chain, plain) in [
            (
                "error sending request: client error (SendRequest): connection error: peer closed \
                 connection without sending TLS close_notify: https://docs.rs/rustls/latest/rustls/manual/_03_howto/index.html#unexpected-eof",
                "tenant unreachable: it closed the connection before answering",
            ),
            (
                "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
                "tenant unreachable: the connection was refused",
            ),
            (
                "error sending request: client error (Connect): dns error: failed to lookup address information",
                "tenant unreachable: its host name does not resolve",
            ),
        ] {
            let reason = ClientError::Unreachable(chain.into()).human_reason();
            assert!(reason.starts_with(plain), "{reason}");
            assert!(!reason.contains("https://"), "{reason}");
        }
        assert!(ClientError::Tls("bad cert".into())
            .human_reason()
            .starts_with("TLS failure: bad"));
    }
}
