//! One API call: throttle, send, classify the answer, retry what is transient, read the body
//! with a size cap.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use dossier_source::http::{self, Backoff, BodyError, Retries};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use tokio::time::Instant;
use url::Url;

use super::config::{RetryObserver, Retrying};
use super::error::ClientError;
use super::ratelimit::RateLimiter;
use super::retry::parse_retry_after;
use crate::envelope::parse_error;

/// Error bodies are small; this much is enough for the `errors` envelope.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// A request, ready to be sent as many times as needed.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// Endpoint name for logs, e.g. `threats`; never carries query values.
    pub endpoint: &'a str,
    pub url: Url,
    pub body: Option<Vec<u8>>,
    pub auth: bool,
}

/// Everything the retry loop needs.
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub auth: HeaderValue,
    pub limiter: std::sync::Arc<RateLimiter>,
    pub backoff: Backoff,
    pub max_retries: u32,
    pub max_transport_retries: u32,
    pub max_body_bytes: u64,
    pub on_retry: Option<RetryObserver>,
}

/// How one try ended, if not with a body.
enum Failure {
    Final(ClientError),
    /// Worth another try after `after` (from `Retry-After`) or a backoff delay.
    Retry {
        err: ClientError,
        after: Option<Duration>,
        transport: bool,
    },
}

impl Transport {
    /// Sends `call`, retrying 429, 5xx, timeouts and connection failures within the configured
    /// budgets, and returns the body of the first success.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Vec<u8>, ClientError> {
        let mut retries = Retries::new(self.backoff, self.max_retries, self.max_transport_retries);
        for attempt in 1u32.. {
            self.limiter.acquire().await;
            let started = Instant::now();
            let (err, after, transport) = match self.try_once(call).await {
                Ok(body) => {
                    tracing::debug!(
                        method = %call.method,
                        endpoint = call.endpoint,
                        attempt,
                        bytes = body.len(),
                        elapsed_ms = elapsed_ms(started),
                        "sentinelone request succeeded"
                    );
                    return Ok(body);
                }
                Err(Failure::Final(err)) => {
                    tracing::debug!(
                        method = %call.method,
                        endpoint = call.endpoint,
                        attempt,
                        kind = err.kind(),
                        elapsed_ms = elapsed_ms(started),
                        "sentinelone request failed"
                    );
                    return Err(err);
                }
                Err(Failure::Retry {
                    err,
                    after,
                    transport,
                }) => (err, after, transport),
            };
            // A spent budget, or a long Retry-After (the caller's to schedule, not ours to sleep
            // through), ends the call.
            let Some(retry) = retries.next(transport, after) else {
                return Err(err);
            };
            if let Some(observe) = &self.on_retry {
                observe(&Retrying::new(err.clone(), &retry));
            }
            tracing::debug!(
                method = %call.method,
                endpoint = call.endpoint,
                attempt,
                kind = err.kind(),
                retry_in_ms = u64::try_from(retry.delay.as_millis()).unwrap_or(u64::MAX),
                "sentinelone request will be retried"
            );
            tokio::time::sleep(retry.delay).await;
        }
        Err(ClientError::BadResponse("retry loop ended".into()))
    }

    async fn try_once(&self, call: &Call<'_>) -> Result<Vec<u8>, Failure> {
        let mut req = self.http.request(call.method.clone(), call.url.clone());
        if call.auth {
            req = req.header(AUTHORIZATION, self.auth.clone());
        }
        if let Some(body) = &call.body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let resp = req.send().await.map_err(transport_failure)?;
        let status = resp.status();
        if status.is_success() {
            return read_body(resp, self.max_body_bytes).await;
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        if status.is_redirection() {
            return Err(Failure::Final(ClientError::BadResponse(format!(
                "unexpected redirect (http {}) — is the tenant URL the console's?",
                status.as_u16()
            ))));
        }
        // The error envelope is best effort: a proxy's HTML page has none.
        let api = read_body(resp, ERROR_BODY_LIMIT)
            .await
            .ok()
            .and_then(|b| parse_error(&b));
        let code = api
            .as_ref()
            .and_then(super::super::envelope::ApiErrorBody::code);
        let (title_text, detail) = (
            api.as_ref().and_then(|a| a.title()),
            api.as_ref().and_then(|a| a.detail()),
        );
        let title = title_text.map(tenant_text);
        Err(match status {
            StatusCode::UNAUTHORIZED => Failure::Final(ClientError::Unauthorized { code, title }),
            StatusCode::FORBIDDEN => Failure::Final(ClientError::Forbidden { code, title }),
            StatusCode::TOO_MANY_REQUESTS => Failure::Retry {
                err: ClientError::RateLimited { retry_after },
                after: retry_after,
                transport: false,
            },
            s if s.is_server_error() => Failure::Retry {
                err: ClientError::Server {
                    status: s.as_u16(),
                    code,
                },
                after: retry_after,
                transport: false,
            },
            // Here the detail says what was wrong with the request (a 400 names the field).
            s => Failure::Final(ClientError::Rejected {
                status: s.as_u16(),
                code,
                title: match (title_text, detail) {
                    (Some(t), Some(d)) => Some(tenant_text(&format!("{t}: {d}"))),
                    (t, d) => t.or(d).map(tenant_text),
                },
            }),
        })
    }
}

/// The most characters of a tenant's own words (an error's title and detail) kept: they go
/// into the connector's status and its events.
const TENANT_TEXT_CHARS: usize = 200;

/// A tenant's words as shown to operators: on one line, without control characters, and cut
/// to [`TENANT_TEXT_CHARS`].
fn tenant_text(s: &str) -> String {
    http::tenant_text(s, TENANT_TEXT_CHARS)
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Reads the body chunk by chunk (decompressed), giving up as soon as it passes `limit`.
async fn read_body(resp: Response, limit: u64) -> Result<Vec<u8>, Failure> {
    http::read_body(resp, limit).await.map_err(|e| match e {
        BodyError::TooLarge { limit, outline } => {
            Failure::Final(ClientError::TooLarge { limit, outline })
        }
        BodyError::Transport(e) => transport_failure(e),
    })
}

/// Classifies a reqwest error. The URL is stripped: it is ours, and the message goes to
/// operators and logs.
fn transport_failure(err: reqwest::Error) -> Failure {
    let err = err.without_url();
    let message = http::error_chain(&err);
    // A connection the tenant dropped (down, restarting, a proxy cutting it) is an outage, not a
    // TLS problem, even when TLS is the layer that noticed the missing close_notify.
    if is_dropped_connection(&err, &message) {
        return Failure::Retry {
            err: ClientError::Unreachable(message),
            after: None,
            transport: true,
        };
    }
    if is_tls(&err, &message) {
        return Failure::Final(ClientError::Tls(message));
    }
    if err.is_timeout() {
        return Failure::Retry {
            err: ClientError::Timeout,
            after: None,
            transport: true,
        };
    }
    if err.is_decode() {
        return Failure::Final(ClientError::BadResponse(message));
    }
    if err.is_connect() || err.is_body() || err.is_request() {
        return Failure::Retry {
            err: ClientError::Unreachable(message),
            after: None,
            transport: true,
        };
    }
    Failure::Final(ClientError::BadResponse(message))
}

/// The error's sources, looking inside `io::Error`s too (they hide their payload from
/// `source()`).
fn sources(err: &reqwest::Error) -> Vec<&(dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut source = err.source();
    while let Some(s) = source {
        out.push(s);
        if let Some(inner) = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            out.push(inner);
        }
        source = s.source();
    }
    out
}

/// How an error chain says the tenant (or something on the way) dropped the connection.
pub(crate) const DROPPED_CONNECTION: &[&str] = &[
    "close_notify",
    "handshake eof",
    "connection closed",
    "connection reset",
    "unexpected eof",
    "broken pipe",
];

pub(crate) use dossier_source::http::mentions;

fn is_dropped_connection(err: &reqwest::Error, message: &str) -> bool {
    use std::io::ErrorKind;
    let dropped = sources(err).into_iter().any(|s| {
        s.downcast_ref::<std::io::Error>().is_some_and(|io| {
            matches!(
                io.kind(),
                ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
            )
        })
    });
    dropped || mentions(message, DROPPED_CONNECTION)
}

fn is_tls(err: &reqwest::Error, message: &str) -> bool {
    sources(err)
        .into_iter()
        .any(|s| s.downcast_ref::<rustls::Error>().is_some())
        || mentions(
            message,
            &[
                "certificate",
                "tls",
                "handshake",
                "invalidcontenttype",
                "corrupt message",
            ],
        )
}
