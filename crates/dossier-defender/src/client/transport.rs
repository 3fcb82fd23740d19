//! One HTTP call: send, classify the answer, retry what is transient (honouring
//! `Retry-After`), read the body with a size cap.

use std::error::Error as _;
use std::time::Duration;

use dossier_source::http::{self, Backoff, BodyError, Retries};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use url::Url;

use super::error::ClientError;
use super::{RetryObserver, Retrying};

/// Error bodies are small; this much is enough for either vendor's envelope.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Which vendor answers, for reading its error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// Entra ID's token endpoint: `{"error","error_description","error_codes"}`.
    Entra,
    /// Microsoft Graph: `{"error":{"code","message","innerError"}}`.
    Graph,
}

/// A request, ready to be sent as many times as needed. Its headers may hold a token: they
/// are never logged.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// Endpoint name for logs (`token`, `alerts_v2`); never carries query values.
    pub endpoint: &'a str,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Option<(&'static str, Vec<u8>)>,
    pub api: Api,
}

/// Everything the retry loop needs.
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub backoff: Backoff,
    pub max_retries: u32,
    pub max_transport_retries: u32,
    pub max_body_bytes: u64,
    pub on_retry: Option<RetryObserver>,
}

/// How one try ended, if not with a body.
enum Attempt {
    Final(ClientError),
    Retry {
        err: ClientError,
        after: Option<Duration>,
        transport: bool,
    },
}

impl Transport {
    /// Sends `call`, retrying 429, 5xx, timeouts and connection failures within their
    /// budgets, and returns the body of the first success. A `Retry-After` longer than the
    /// retry cap is the caller's to schedule: the error is returned at once.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Vec<u8>, ClientError> {
        let mut retries = Retries::new(self.backoff, self.max_retries, self.max_transport_retries);
        loop {
            let (err, after, transport) = match self.try_once(call).await {
                Ok(body) => return Ok(body),
                Err(Attempt::Final(err)) => {
                    tracing::debug!(
                        endpoint = call.endpoint,
                        kind = err.kind(),
                        "defender request failed"
                    );
                    return Err(err);
                }
                Err(Attempt::Retry {
                    err,
                    after,
                    transport,
                }) => (err, after, transport),
            };
            let Some(retry) = retries.next(transport, after) else {
                return Err(err);
            };
            if let Some(observe) = &self.on_retry {
                observe(&Retrying::new(err.clone(), &retry));
            }
            tracing::debug!(
                endpoint = call.endpoint,
                kind = err.kind(),
                retry_in_ms = u64::try_from(retry.delay.as_millis()).unwrap_or(u64::MAX),
                "defender request will be retried"
            );
            tokio::time::sleep(retry.delay).await;
        }
    }

    async fn try_once(&self, call: &Call<'_>) -> Result<Vec<u8>, Attempt> {
        let mut req = self
            .http
            .request(call.method.clone(), call.url.clone())
            .headers(call.headers.clone());
        if let Some((content_type, body)) = &call.body {
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    HeaderValue::from_static(content_type),
                )
                .body(body.clone());
        }
        let resp = req.send().await.map_err(transport_failure)?;
        let status = resp.status();
        if status.is_success() {
            return read_body(resp, self.max_body_bytes).await;
        }
        // Graph sends `Retry-After` in seconds (PRODUCERS.md §1.5).
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status.is_redirection() {
            return Err(Attempt::Final(ClientError::BadResponse(format!(
                "unexpected redirect (http {})",
                status.as_u16()
            ))));
        }
        let body = read_body(resp, ERROR_BODY_LIMIT).await.unwrap_or_default();
        Err(classify(call.api, status, retry_after, &body))
    }
}

/// Classifies an error answer by status and vendor body.
fn classify(api: Api, status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Attempt {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Attempt::Retry {
            err: ClientError::RateLimited { retry_after },
            after: retry_after,
            transport: false,
        };
    }
    let (code, message) = match api {
        Api::Entra => {
            let e = EntraError::parse(body);
            if status.is_client_error() && e.is_some() {
                let e = e.unwrap_or_default();
                return Attempt::Final(ClientError::Entra {
                    status: status.as_u16(),
                    error: e.error.unwrap_or_else(|| "error".into()),
                    code: e.error_codes.first().copied(),
                    description: e.error_description.as_deref().map(first_line),
                });
            }
            (None, None)
        }
        Api::Graph => GraphError::parse(body).map_or((None, None), |e| (e.code, e.message)),
    };
    if status.is_server_error() {
        return Attempt::Retry {
            err: ClientError::Server {
                status: status.as_u16(),
                code,
            },
            after: retry_after,
            transport: false,
        };
    }
    let message = message.as_deref().map(tenant_text);
    Attempt::Final(match status {
        StatusCode::UNAUTHORIZED => ClientError::TokenRefused { code },
        StatusCode::FORBIDDEN
            if message
                .as_deref()
                .is_some_and(|m| m.contains("Missing application roles")) =>
        {
            ClientError::ConsentPending { write: false }
        }
        StatusCode::FORBIDDEN => ClientError::Forbidden { code, message },
        s => ClientError::Rejected {
            status: s.as_u16(),
            code,
            message,
        },
    })
}

/// Classifies an error answer of Entra ID's token endpoint as the client does.
pub(crate) fn entra_error(status: u16, body: &[u8]) -> ClientError {
    classified(Api::Entra, status, body)
}

/// Classifies an error answer of Microsoft Graph as the client does (before the one renewal a
/// 401 gets).
pub(crate) fn graph_error(status: u16, body: &[u8]) -> ClientError {
    classified(Api::Graph, status, body)
}

fn classified(api: Api, status: u16, body: &[u8]) -> ClientError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match classify(api, status, None, body) {
        Attempt::Final(e) | Attempt::Retry { err: e, .. } => e,
    }
}

/// Entra ID's token error body (§1.8).
#[derive(Debug, Default, Deserialize)]
struct EntraError {
    error: Option<String>,
    error_description: Option<String>,
    #[serde(default)]
    error_codes: Vec<u64>,
}

impl EntraError {
    fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<EntraError>(body)
            .ok()
            .filter(|e| e.error.is_some() || !e.error_codes.is_empty())
    }
}

/// Graph's error body (§1.8): `{"error":{"code","message"}}`.
#[derive(Debug, Default, Deserialize)]
struct GraphError {
    code: Option<String>,
    message: Option<String>,
}

impl GraphError {
    fn parse(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Envelope {
            error: GraphError,
        }
        serde_json::from_slice::<Envelope>(body)
            .ok()
            .map(|e| e.error)
    }
}

/// The most characters of a vendor's own words kept: they go into the connector's status.
const TENANT_TEXT_CHARS: usize = 300;

/// A vendor's words as shown to operators: on one line, without control characters, cut to
/// [`TENANT_TEXT_CHARS`].
pub(crate) fn tenant_text(s: &str) -> String {
    http::tenant_text(s, TENANT_TEXT_CHARS)
}

/// The first line of an Entra description (the rest is trace and correlation ids).
fn first_line(s: &str) -> String {
    tenant_text(s.lines().next().unwrap_or_default())
}

/// Reads the body chunk by chunk (decompressed), giving up as soon as it passes `limit`.
async fn read_body(resp: Response, limit: u64) -> Result<Vec<u8>, Attempt> {
    http::read_body(resp, limit).await.map_err(|e| match e {
        BodyError::TooLarge { limit, outline } => {
            Attempt::Final(ClientError::TooLarge { limit, outline })
        }
        BodyError::Transport(e) => transport_failure(e),
    })
}

/// Classifies a reqwest error. The URL is stripped: it may carry the filter, and the message
/// goes to operators and logs.
fn transport_failure(err: reqwest::Error) -> Attempt {
    let err = err.without_url();
    let message = http::error_chain(&err);
    let lower = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let dropped = has(&[
        "close_notify",
        "connection closed",
        "connection reset",
        "unexpected eof",
        "broken pipe",
    ]);
    if dropped {
        return Attempt::Retry {
            err: ClientError::Unreachable(
                "the connection was closed before an answer — retrying".into(),
            ),
            after: None,
            transport: true,
        };
    }
    let tls = sources(&err)
        .into_iter()
        .any(|s| s.downcast_ref::<rustls::Error>().is_some())
        || has(&["certificate", "tls", "handshake"]);
    if tls {
        return Attempt::Final(ClientError::Tls(message));
    }
    if err.is_timeout() {
        return Attempt::Retry {
            err: ClientError::Timeout,
            after: None,
            transport: true,
        };
    }
    if err.is_decode() {
        return Attempt::Final(ClientError::BadResponse(message));
    }
    if err.is_connect() || err.is_body() || err.is_request() {
        let plain = if has(&["connection refused"]) {
            "the connection was refused — check the URL's host and port".to_owned()
        } else if has(&["dns error", "failed to lookup", "no such host"]) {
            "the host name does not resolve — check the URL".to_owned()
        } else {
            message
        };
        return Attempt::Retry {
            err: ClientError::Unreachable(plain),
            after: None,
            transport: true,
        };
    }
    Attempt::Final(ClientError::BadResponse(message))
}

fn sources(err: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut source = err.source();
    while let Some(s) = source {
        out.push(s);
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn final_error(a: Attempt) -> ClientError {
        match a {
            Attempt::Final(e) => e,
            Attempt::Retry { err, .. } => panic!("retried: {err}"),
        }
    }

    #[test]
    fn entra_bodies_keep_their_code_and_first_line() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1","error_codes":[7000215]}"#;
        let e = final_error(classify(Api::Entra, StatusCode::UNAUTHORIZED, None, body));
        assert_eq!(
            e,
            ClientError::Entra {
                status: 401,
                error: "invalid_client".into(),
                code: Some(7_000_215),
                description: Some("AADSTS7000215: Invalid client secret provided.".into()),
            }
        );
    }

    #[test]
    fn graph_403_missing_roles_is_consent_and_others_are_forbidden() {
        let roles = br#"{"error":{"code":"Forbidden","message":"Missing application roles. API required roles: SecurityAlert.Read.All, application roles: ."}}"#;
        assert_eq!(
            final_error(classify(Api::Graph, StatusCode::FORBIDDEN, None, roles)),
            ClientError::ConsentPending { write: false }
        );
        let other = br#"{"error":{"code":"Forbidden","message":"Tenant feature isn't enabled"}}"#;
        assert!(matches!(
            final_error(classify(Api::Graph, StatusCode::FORBIDDEN, None, other)),
            ClientError::Forbidden { .. }
        ));
        assert!(matches!(
            final_error(classify(
                Api::Graph,
                StatusCode::UNAUTHORIZED,
                None,
                b"<html>"
            )),
            ClientError::TokenRefused { code: None }
        ));
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        let wait = Some(Duration::from_secs(3));
        assert!(matches!(
            classify(Api::Graph, StatusCode::TOO_MANY_REQUESTS, wait, b""),
            Attempt::Retry { after, transport: false, .. } if after == wait
        ));
        assert!(matches!(
            classify(Api::Entra, StatusCode::SERVICE_UNAVAILABLE, None, b"{}"),
            Attempt::Retry {
                err: ClientError::Server { status: 503, .. },
                ..
            }
        ));
    }

    #[test]
    fn vendor_text_is_one_bounded_line() {
        assert_eq!(tenant_text("a\r\n b\u{7}c"), "a bc");
        assert_eq!(
            tenant_text(&"x ".repeat(500)).chars().count(),
            TENANT_TEXT_CHARS
        );
    }
}
