//! One HTTP call: wait out a rate-limit pause, send, retry what is transient (429 honouring
//! `X-Ratelimit-Retryafter`, 5xx, timeouts, dropped connections), read the body with a size
//! cap. What a refusal means (a bad secret, a missing scope) is the caller's to say: the same
//! 403 means one thing from `/oauth2/token` and another from `/alerts/*` (PRODUCERS.md §2.8).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub(crate) use dossier_source::http::Backoff;
use dossier_source::http::{self, BodyError, Retries};
use dossier_source::{RetryObserver, Retrying};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use tokio::time::Instant;
use url::Url;

use super::error::ClientError;

/// Error bodies are small; this much is enough for the `errors` envelope.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// `X-Ratelimit-Remaining`: requests left in the sliding minute (§2.5).
pub(crate) const REMAINING: &str = "x-ratelimit-remaining";
/// `X-Ratelimit-Retryafter`: when requests are accepted again, Unix epoch seconds (§2.5; the
/// Sentinel connector reads it so [P4]).
pub(crate) const RETRY_AFTER_EPOCH: &str = "x-ratelimit-retryafter";

/// A request, ready to be sent as many times as needed.
pub(crate) struct Call<'a> {
    pub method: Method,
    /// The path, for logs and for [`ClientError::Retired`]; never carries query values.
    pub path: &'a str,
    pub url: Url,
    /// Content type and bytes.
    pub body: Option<(&'static str, Vec<u8>)>,
    pub auth: Option<HeaderValue>,
}

/// A success: the status (the token endpoint answers 201) and the body.
pub(crate) struct Reply {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why a call did not succeed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// A refusal the caller interprets: the status and the API's first `errors[].message`.
    Status {
        status: u16,
        message: Option<String>,
    },
    /// Everything else, already classified.
    Client(ClientError),
}

impl From<ClientError> for CallError {
    fn from(e: ClientError) -> Self {
        CallError::Client(e)
    }
}

/// Everything the retry loop needs.
pub(crate) struct Transport {
    pub http: reqwest::Client,
    pub backoff: Backoff,
    pub max_retries: u32,
    pub max_transport_retries: u32,
    pub max_body_bytes: u64,
    pub on_retry: Option<RetryObserver>,
    /// No request before this: the API said none were left (`X-Ratelimit-Remaining: 0`).
    pub pause: Mutex<Option<Instant>>,
}

/// How one try ended, if not with a reply.
enum Try {
    Final(CallError),
    Retry {
        err: ClientError,
        after: Option<Duration>,
        transport: bool,
    },
}

impl Transport {
    /// Sends `call`, retrying 429, 5xx, timeouts and dropped connections within the budgets,
    /// and returns the first success.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Reply, CallError> {
        let mut retries = Retries::new(self.backoff, self.max_retries, self.max_transport_retries);
        loop {
            self.wait_for_pause().await;
            let (err, after, transport) = match self.try_once(call).await {
                Ok(reply) => return Ok(reply),
                Err(Try::Final(e)) => return Err(e),
                Err(Try::Retry {
                    err,
                    after,
                    transport,
                }) => (err, after, transport),
            };
            // A spent budget, or a long wait (the worker's to schedule, not ours to sleep
            // through), ends the call.
            let Some(retry) = retries.next(transport, after) else {
                return Err(err.into());
            };
            if let Some(observe) = &self.on_retry {
                observe(&Retrying {
                    reason: err.human_reason(),
                    retry: retry.retry,
                    of: retry.of,
                    failing_for: retry.failing_for,
                    timed_out: matches!(err, ClientError::Timeout),
                });
            }
            tracing::debug!(
                method = %call.method,
                path = call.path,
                error = %err,
                retry_in_ms = u64::try_from(retry.delay.as_millis()).unwrap_or(u64::MAX),
                "crowdstrike request will be retried"
            );
            tokio::time::sleep(retry.delay).await;
        }
    }

    async fn wait_for_pause(&self) {
        let until = *self
            .pause
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Remembers a pause the API asked for on a success: no request left in this minute.
    fn note_remaining(&self, headers: &HeaderMap) {
        let none_left = header_u64(headers, REMAINING) == Some(0);
        let until = if none_left {
            retry_after(headers)
                .filter(|d| *d <= self.backoff.cap)
                .map(|d| Instant::now() + d)
        } else {
            None
        };
        *self
            .pause
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = until;
    }

    async fn try_once(&self, call: &Call<'_>) -> Result<Reply, Try> {
        let mut req = self.http.request(call.method.clone(), call.url.clone());
        if let Some(auth) = &call.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        if let Some((content_type, body)) = &call.body {
            req = req.header(CONTENT_TYPE, *content_type).body(body.clone());
        }
        let resp = req.send().await.map_err(transport_failure)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        if status.is_success() {
            self.note_remaining(&headers);
            let body = read_body(resp, self.max_body_bytes).await?;
            return Ok(Reply { headers, body });
        }
        if status.is_redirection() {
            return Err(Try::Final(
                ClientError::BadResponse(format!(
                    "unexpected redirect (http {}) on {}",
                    status.as_u16(),
                    call.path
                ))
                .into(),
            ));
        }
        let message = read_body(resp, ERROR_BODY_LIMIT)
            .await
            .ok()
            .and_then(|b| error_message(&b));
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => {
                let after = retry_after(&headers);
                Try::Retry {
                    err: ClientError::RateLimited { retry_after: after },
                    after,
                    transport: false,
                }
            }
            s if s.is_server_error() => Try::Retry {
                err: ClientError::Server { status: s.as_u16() },
                after: None,
                transport: false,
            },
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Try::Final(
                ClientError::Retired {
                    status: status.as_u16(),
                    path: call.path.to_owned(),
                }
                .into(),
            ),
            s => Try::Final(CallError::Status {
                status: s.as_u16(),
                message,
            }),
        })
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// How long the API asks to wait: `X-Ratelimit-Retryafter` (epoch seconds) first, then a
/// standard `Retry-After` in seconds.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(at) = header_u64(headers, RETRY_AFTER_EPOCH) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        return Some(Duration::from_secs(at).saturating_sub(now));
    }
    header_u64(headers, RETRY_AFTER.as_str()).map(Duration::from_secs)
}

/// The first `errors[].message` of a Falcon error envelope (§2.6), cleaned for operators.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        errors: Option<Vec<Entry>>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        message: Option<String>,
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let message = envelope.errors?.into_iter().find_map(|e| e.message)?;
    let text = tenant_text(&message);
    (!text.is_empty()).then_some(text)
}

/// The most characters of the API's own words kept: they go into connector status and events.
const TENANT_TEXT_CHARS: usize = 200;

/// The API's words as shown to operators: one line, no control characters, cut short.
fn tenant_text(s: &str) -> String {
    http::tenant_text(s, TENANT_TEXT_CHARS)
}

/// Reads the body chunk by chunk, giving up as soon as it passes `limit`.
async fn read_body(resp: Response, limit: u64) -> Result<Vec<u8>, Try> {
    http::read_body(resp, limit).await.map_err(|e| match e {
        BodyError::TooLarge { limit, outline } => {
            Try::Final(ClientError::TooLarge { limit, outline }.into())
        }
        BodyError::Transport(e) => transport_failure(e),
    })
}

/// Classifies a reqwest error, its URL stripped (the message goes to operators and logs).
fn transport_failure(err: reqwest::Error) -> Try {
    let err = err.without_url();
    let message = http::error_chain(&err);
    let lower = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let retry = |err| Try::Retry {
        err,
        after: None,
        transport: true,
    };
    if has(&[
        "close_notify",
        "connection closed",
        "connection reset",
        "unexpected eof",
        "broken pipe",
    ]) {
        return retry(ClientError::Unreachable(
            "it closed the connection before answering".into(),
        ));
    }
    if has(&["certificate", "tls", "handshake"]) {
        return Try::Final(ClientError::Tls(message).into());
    }
    if err.is_timeout() {
        return retry(ClientError::Timeout);
    }
    if err.is_connect() || err.is_body() || err.is_request() {
        return retry(ClientError::Unreachable(message));
    }
    Try::Final(ClientError::BadResponse(message).into())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn retry_after_reads_epoch_seconds_first() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from(9u64));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(9)));
        h.insert(RETRY_AFTER_EPOCH, HeaderValue::from(now + 30));
        let d = retry_after(&h).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
        h.insert(RETRY_AFTER_EPOCH, HeaderValue::from(now - 30));
        assert_eq!(
            retry_after(&h),
            Some(Duration::ZERO),
            "a past instant means now"
        );
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn error_messages_are_read_from_the_envelope_on_one_line() {
        let body = br#"{"meta":{},"errors":[{"code":403,"message":"access denied,\n authorization failed"}]}"#;
        assert_eq!(
            error_message(body).as_deref(),
            Some("access denied, authorization failed")
        );
        assert_eq!(error_message(b"<html>nginx</html>"), None);
        assert_eq!(error_message(br#"{"errors":[]}"#), None);
        let long = format!(r#"{{"errors":[{{"message":"{}"}}]}}"#, "x".repeat(500));
        assert_eq!(error_message(long.as_bytes()).unwrap().chars().count(), 200);
    }

    #[test]
    fn backoff_stays_under_its_ceiling() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        for n in 0..40 {
            assert!(b.delay(n) <= Duration::from_secs(1));
        }
        assert!(b.delay(0) <= Duration::from_millis(100));
    }
}
