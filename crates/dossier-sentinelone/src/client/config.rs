//! How a [`crate::Client`] is configured.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::error::ClientError;

/// 64 MiB: a full page of 1000 large threats is a few MiB; anything near this is not the API.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Settings of one tenant connection. Build with [`ClientConfig::new`], then adjust fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// The console URL, e.g. `https://usea1-partners.sentinelone.net`. A trailing
    /// `/web/api/v2.1` is accepted and not doubled.
    pub base_url: Url,
    /// The API token; sent only in the `Authorization` header and never logged.
    pub token: SecretString,
    /// Extra trust roots (every certificate in the PEM text), added to the built-in roots.
    pub extra_roots_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included.
    pub request_timeout: Duration,
    /// Responses larger than this (after decompression) fail with `TooLarge`.
    pub max_body_bytes: u64,
    /// Client-side throttle shared by all clones of the client (§1.5: `/threats` 10 req/s).
    pub max_requests_per_sec: f64,
    /// Requests that may go out at once before the rate applies; 1 keeps every second at or
    /// below `max_requests_per_sec`.
    pub burst: u32,
    /// Retries after 429 or 5xx before giving up.
    pub max_retries: u32,
    /// Retries after a timeout or a connection failure before giving up.
    pub max_transport_retries: u32,
    /// First backoff ceiling; doubled per retry.
    pub backoff_base: Duration,
    /// Largest backoff, and the longest `Retry-After` the client waits out itself; a longer one
    /// is returned as `RateLimited` for the caller to schedule.
    pub backoff_cap: Duration,
    pub user_agent: String,
    /// Refuse to connect to internal addresses (loopback, private, link-local, metadata…),
    /// checked on every connection after DNS resolution, so that a host re-pointed after it
    /// was validated (DNS rebinding) cannot reach them. Off by default; servers turn it on
    /// unless the deployment allows private tenants.
    pub refuse_internal_addresses: bool,
    /// Told of each retry before the client waits for it, so that a caller can show a tenant
    /// that keeps failing while the client is still trying (a call can take minutes).
    pub on_retry: Option<RetryObserver>,
}

/// Called with each [`Retrying`]; it runs inside the call, so it must return at once.
pub type RetryObserver = dossier_source::http::ClientRetryObserver<ClientError>;

/// A try that failed and that the client is about to make again: why (`error`), which retry
/// of how many, the wait before it and how long the call has been failing.
pub type Retrying = dossier_source::http::ClientRetrying<ClientError>;

impl ClientConfig {
    /// Returns the defaults for a tenant: 10 s connect, 60 s request, 64 MiB bodies, 10 req/s,
    /// 5 retries on 429/5xx, 2 on transport failures, backoff 1 s doubling to 60 s.
    #[must_use]
    pub fn new(base_url: Url, token: SecretString) -> Self {
        ClientConfig {
            base_url,
            token,
            extra_roots_pem: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_requests_per_sec: 10.0,
            burst: 1,
            max_retries: 5,
            max_transport_retries: 2,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            user_agent: concat!("dossier/", env!("CARGO_PKG_VERSION")).to_owned(),
            refuse_internal_addresses: false,
            on_retry: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("token", &"<redacted>")
            .field(
                "extra_roots_pem",
                &self.extra_roots_pem.as_ref().map(std::vec::Vec::len),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_requests_per_sec", &self.max_requests_per_sec)
            .field("burst", &self.burst)
            .field("max_retries", &self.max_retries)
            .field("max_transport_retries", &self.max_transport_retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("user_agent", &self.user_agent)
            .field("on_retry", &self.on_retry.is_some())
            .field("refuse_internal_addresses", &self.refuse_internal_addresses)
            .finish()
    }
}

/// The API root (`…/web/api/v2.1/`) for a console URL.
pub(crate) fn api_root(base: &Url) -> Result<Url, String> {
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!(
            "tenant URL must be http(s), not `{}`",
            base.scheme()
        ));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err("tenant URL has no host".into());
    }
    let mut root = base.clone();
    root.set_query(None);
    root.set_fragment(None);
    let path = root.path().trim_end_matches('/');
    let path = path
        .strip_suffix("/web/api/v2.1")
        .unwrap_or(path)
        .to_owned();
    root.set_path(&format!("{path}/web/api/v2.1/"));
    Ok(root)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn root(s: &str) -> Result<String, String> {
        api_root(&Url::parse(s).unwrap()).map(String::from)
    }

    #[test]
    fn api_root_is_derived_from_the_console_url() {
        let want = "https://t.sentinelone.net/web/api/v2.1/";
        assert_eq!(root("https://t.sentinelone.net").unwrap(), want);
        assert_eq!(root("https://t.sentinelone.net/").unwrap(), want);
        assert_eq!(
            root("https://t.sentinelone.net/web/api/v2.1").unwrap(),
            want
        );
        assert_eq!(
            root("https://t.sentinelone.net/web/api/v2.1/?x=1").unwrap(),
            want
        );
        assert_eq!(
            root("http://127.0.0.1:9/s1").unwrap(),
            "http://127.0.0.1:9/s1/web/api/v2.1/"
        );
        assert!(root("ftp://t.sentinelone.net").is_err());
    }

    #[test]
    fn debug_redacts_the_token() {
        let cfg = ClientConfig::new(
            Url::parse("https://t.sentinelone.net").unwrap(),
            SecretString::from("s3cr3t-token-value"),
        );
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("s3cr3t-token-value"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }
}
