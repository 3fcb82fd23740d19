//! What can go wrong talking to Entra ID and Microsoft Graph, in terms an operator can act on.
//!
//! No variant ever holds the client secret or a token: messages come from status codes, the
//! vendors' error bodies (PRODUCERS.md §1.8) and transport errors stripped of their URL.

use std::time::Duration;

/// Where the console settings an operator checks live, for the reasons below.
const APP_REGISTRATIONS: &str = "Entra ID › App registrations";

/// A failed call to Entra ID's token endpoint or to Microsoft Graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The token endpoint refused the credentials: `{"error":"invalid_client",
    /// "error_description":"AADSTS7000215: …","error_codes":[7000215]}` (§1.8). Never retried.
    #[error("entra id refused the credentials (http {status}, {error}{})", code.map(|c| format!(", AADSTS{c}")).unwrap_or_default())]
    Entra {
        status: u16,
        /// The OAuth error: `invalid_client`, `unauthorized_client`, `invalid_request`, …
        error: String,
        /// The first of `error_codes` (the number after `AADSTS`).
        code: Option<u64>,
        /// The first line of `error_description`, cleaned for display.
        description: Option<String>,
    },
    /// Graph answered 401 to a fresh token too.
    #[error("graph refused the access token (401{})", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    TokenRefused { code: Option<String> },
    /// Graph's 403 "Missing application roles": the app has not been granted (or an admin has
    /// not consented to) the permission (§1.8, the sample `graph_error_403_missing_roles.json`).
    #[error("application permission missing or not consented (403)")]
    ConsentPending {
        /// Whether a write was refused (it needs `SecurityAlert.ReadWrite.All`).
        write: bool,
    },
    /// Another 403. Never retried.
    #[error("forbidden (403{})", describe(code.as_deref(), message.as_deref()))]
    Forbidden {
        code: Option<String>,
        message: Option<String>,
    },
    /// 429 on every try, or a `Retry-After` longer than the client waits.
    #[error("rate limited{}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx on every try.
    #[error("server error (http {status}{})", code.as_ref().map(|c| format!(", {c}")).unwrap_or_default())]
    Server { status: u16, code: Option<String> },
    /// Another 4xx: the request was refused (a bad `$filter`, `$top` or `$skip`, an unknown
    /// alert).
    #[error("request rejected (http {status}{})", describe(code.as_deref(), message.as_deref()))]
    Rejected {
        status: u16,
        code: Option<String>,
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

fn describe(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(" {c}: {m}"),
        (Some(t), None) | (None, Some(t)) => format!(" {t}"),
        (None, None) => String::new(),
    }
}

impl ClientError {
    /// Classifies an error answer (`status`, body) of Entra ID's token endpoint, as the client
    /// does.
    #[must_use]
    pub fn from_entra(status: u16, body: &[u8]) -> Self {
        super::transport::entra_error(status, body)
    }

    /// Classifies an error answer of Microsoft Graph, as the client does before renewing its
    /// token once on a 401.
    #[must_use]
    pub fn from_graph(status: u16, body: &[u8]) -> Self {
        super::transport::graph_error(status, body)
    }

    /// Returns a stable machine-readable name for the failure, for logs and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Entra { .. } => "credentials_rejected",
            ClientError::TokenRefused { .. } => "token_refused",
            ClientError::ConsentPending { .. } => "consent_pending",
            ClientError::Forbidden { .. } => "insufficient_permissions",
            ClientError::RateLimited { .. } => "rate_limited",
            ClientError::Server { .. } => "tenant_error",
            ClientError::Rejected { .. } => "rejected",
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
            ClientError::Entra {
                error,
                code,
                description,
                ..
            } => entra_reason(error, *code, description.as_deref()),
            ClientError::TokenRefused { code } => format!(
                "Microsoft Graph refused a fresh access token (401{}) — check that tenant_id is \
                 the tenant the app registration lives in and that graph_url is Microsoft \
                 Graph's",
                code.as_ref().map(|c| format!(" {c}")).unwrap_or_default()
            ),
            ClientError::ConsentPending { write: false } => format!(
                "the app registration has no consented permission to read alerts (403 Missing \
                 application roles) — grant the application permission SecurityAlert.Read.All \
                 (SecurityAlert.ReadWrite.All for write-back) under {APP_REGISTRATIONS} › API \
                 permissions › Microsoft Graph, then Grant admin consent"
            ),
            ClientError::ConsentPending { write: true } => format!(
                "the app registration may read alerts but not update them (403 Missing \
                 application roles) — grant the application permission \
                 SecurityAlert.ReadWrite.All under {APP_REGISTRATIONS} › API permissions › \
                 Microsoft Graph, then Grant admin consent"
            ),
            ClientError::Forbidden { code, message } => format!(
                "Microsoft Graph refused the request (403{}) — check the app registration's API \
                 permissions and the tenant's Defender licence",
                describe(code.as_deref(), message.as_deref())
            ),
            ClientError::RateLimited {
                retry_after: Some(d),
            } => format!(
                "Microsoft Graph is throttling requests — retrying in {}s",
                d.as_secs().max(1)
            ),
            ClientError::RateLimited { retry_after: None } => {
                "Microsoft Graph is throttling requests — retrying later".to_owned()
            }
            ClientError::Server { status, .. } => format!(
                "Microsoft answered with a server error (HTTP {status}) — usually transient, \
                 retrying later"
            ),
            ClientError::Rejected {
                status,
                code,
                message,
            } => format!(
                "Microsoft Graph refused the request (HTTP {status}{})",
                describe(code.as_deref(), message.as_deref())
            ),
            ClientError::Timeout => {
                "Microsoft did not answer in time — check graph_url, login_url and the network \
                 path"
                    .to_owned()
            }
            ClientError::Tls(e) => {
                format!("TLS failure: {e} — check graph_url, login_url and trust roots")
            }
            ClientError::Unreachable(e) => format!("Microsoft unreachable: {e}"),
            ClientError::TooLarge { limit, .. } => {
                format!("Microsoft sent a response larger than {limit} bytes")
            }
            ClientError::BadResponse(e) => format!(
                "the answer is not Microsoft Graph's or Entra ID's: {e} — check graph_url and \
                 login_url"
            ),
            ClientError::Config(e) => format!("the connector configuration is invalid: {e}"),
        }
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

/// What an operator does about each Entra refusal (§1.2, §1.8, §4.13).
fn entra_reason(error: &str, code: Option<u64>, description: Option<&str>) -> String {
    let secrets = format!("{APP_REGISTRATIONS} › Certificates & secrets");
    match code {
        Some(7_000_215) => format!(
            "client secret rejected (AADSTS7000215) — paste the secret's Value, not its Secret \
             ID, from {secrets}"
        ),
        Some(7_000_222) => format!(
            "client secret expired (AADSTS7000222) — create a new client secret in {secrets} \
             and save its Value in this connector"
        ),
        Some(700_016) => format!(
            "no application with this client_id in the tenant (AADSTS700016) — copy the \
             Application (client) ID from {APP_REGISTRATIONS} › your app › Overview, and check \
             tenant_id"
        ),
        Some(90_002 | 900_023 | 90_072) => format!(
            "tenant not found (AADSTS{}) — copy the Directory (tenant) ID from \
             {APP_REGISTRATIONS} › your app › Overview into tenant_id",
            code.unwrap_or_default()
        ),
        Some(7_000_218) => format!(
            "no client secret was accepted (AADSTS7000218) — save the secret's Value from \
             {secrets}"
        ),
        Some(c) => format!(
            "Entra ID refused the credentials ({error}, AADSTS{c}{}) — check tenant_id, \
             client_id and client_secret",
            description.map(|d| format!(": {d}")).unwrap_or_default()
        ),
        None => format!(
            "Entra ID refused the credentials ({error}{}) — check tenant_id, client_id and \
             client_secret",
            description.map(|d| format!(": {d}")).unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_codes_say_what_to_do() {
        let e = |code| ClientError::Entra {
            status: 401,
            error: "invalid_client".into(),
            code: Some(code),
            description: Some("AADSTS1: words".into()),
        };
        assert!(e(7_000_215)
            .human_reason()
            .contains("paste the secret's Value, not its Secret ID"));
        assert!(e(7_000_222)
            .human_reason()
            .starts_with("client secret expired (AADSTS7000222) — create a new client secret"));
        assert!(e(90_002).human_reason().contains("tenant_id"));
        let other = e(50_000).human_reason();
        assert!(
            other.contains("invalid_client, AADSTS50000: AADSTS1: words"),
            "{other}"
        );
        assert_eq!(
            e(7_000_215).to_string(),
            "entra id refused the credentials (http 401, invalid_client, AADSTS7000215)"
        );
    }

    #[test]
    fn missing_roles_name_the_permission_and_where_to_grant_it() {
        let read = ClientError::ConsentPending { write: false }.human_reason();
        assert!(read.contains("SecurityAlert.Read.All"), "{read}");
        assert!(read.contains("API permissions › Microsoft Graph, then Grant admin consent"));
        let write = ClientError::ConsentPending { write: true }.human_reason();
        assert!(write.contains("SecurityAlert.ReadWrite.All"), "{write}");
        assert!(!write.contains("SecurityAlert.Read.All "), "{write}");
    }
}
