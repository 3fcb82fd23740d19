//! How a [`crate::Client`] is configured.

use std::fmt;
use std::time::Duration;

use dossier_source::RetryObserver;
use secrecy::SecretString;
use url::Url;

use crate::cloud::Cloud;

/// 64 MiB: a page of 1,000 alerts of 10–25 KB each (the samples) is at most 25 MB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Settings of one connection to a Falcon cloud. Build with [`ClientConfig::new`], then adjust
/// fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// The API base URL (`https://api.crowdstrike.com`); every call, the token request
    /// included, goes there and nowhere else.
    pub base_url: Url,
    pub client_id: String,
    /// Sent only in the body of `POST /oauth2/token`; never logged.
    pub client_secret: SecretString,
    /// An MSSP child CID the token is asked for (§2.3).
    pub member_cid: Option<String>,
    /// The cloud the connector was configured for: a token response naming another one in
    /// `X-Cs-Region` is refused with [`crate::ClientError::WrongCloud`]. `None` (an explicit
    /// base URL naming no known cloud): not checked.
    pub expected_cloud: Option<Cloud>,
    /// Extra trust roots (every certificate in the PEM text), added to the built-in roots.
    pub extra_roots_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included.
    pub request_timeout: Duration,
    /// Responses larger than this fail with `TooLarge`.
    pub max_body_bytes: u64,
    /// Retries after 429 or 5xx before giving up.
    pub max_retries: u32,
    /// Retries after a timeout or a dropped connection before giving up.
    pub max_transport_retries: u32,
    /// First backoff ceiling; doubled per retry.
    pub backoff_base: Duration,
    /// Largest backoff, and the longest rate-limit wait the client sits out itself; a longer
    /// one is returned as `RateLimited` for the worker to schedule.
    pub backoff_cap: Duration,
    /// Refuse to connect to internal addresses, checked on every connection after DNS
    /// resolution (see `guard`).
    pub refuse_internal_addresses: bool,
    /// Told of each retry before the client waits for it.
    pub on_retry: Option<RetryObserver>,
    pub user_agent: String,
}

impl ClientConfig {
    /// Returns the defaults: 10 s connect, 60 s request, 64 MiB bodies, 5 retries on 429/5xx,
    /// 2 on transport failures, backoff 1 s doubling to 60 s; the cloud checked is the one the
    /// base URL names, if any.
    #[must_use]
    pub fn new(base_url: Url, client_id: &str, client_secret: SecretString) -> Self {
        ClientConfig {
            expected_cloud: Cloud::of_base_url(&base_url),
            base_url,
            client_id: client_id.trim().to_owned(),
            client_secret,
            member_cid: None,
            extra_roots_pem: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_retries: 5,
            max_transport_retries: 2,
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(60),
            refuse_internal_addresses: false,
            on_retry: None,
            user_agent: concat!("dossier/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("member_cid", &self.member_cid)
            .field("expected_cloud", &self.expected_cloud)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_retries", &self.max_retries)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("refuse_internal_addresses", &self.refuse_internal_addresses)
            .finish_non_exhaustive()
    }
}
