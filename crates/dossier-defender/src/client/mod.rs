//! The HTTP client of Entra ID (the client-credentials token) and Microsoft Graph
//! (`security/alerts_v2`).
//!
//! rustls only, extra trust roots from PEM, bounded retries of what is transient, a streamed
//! and size-capped body. The token is fetched once, kept, and renewed a few minutes before it
//! expires (PRODUCERS.md §1.2: one hour); a 401 from Graph renews it once, then fails. The
//! secret and the tokens never appear in errors, logs or `Debug` output.

mod error;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;
use url::Url;

pub use dossier_source::http::extra_roots;
use dossier_source::http::{self, Token};

pub use error::ClientError;

use crate::query::{alerts_url, is_own_link, AlertQuery};
use transport::{Api, Call, Transport};

/// 64 MiB: a page of 1000 alerts is a few MiB; anything near this is not Graph.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// The longest a token is kept before its end: renewed this long before `expires_in` runs out
/// (or a quarter of its life, for short-lived ones).
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Called with each [`Retrying`]; it runs inside the call, so it must return at once.
pub type RetryObserver = http::ClientRetryObserver<ClientError>;

/// A try that failed and that the client is about to make again: why (`error`), which retry
/// of how many, the wait before it and how long the call has been failing.
pub type Retrying = http::ClientRetrying<ClientError>;

/// What identifies the app registration to Entra ID, and where Entra and Graph are.
#[derive(Clone)]
pub struct Credentials {
    /// Directory (tenant) ID.
    pub tenant_id: String,
    /// Application (client) ID.
    pub client_id: String,
    /// The client secret's Value.
    pub client_secret: SecretString,
    /// `https://login.microsoftonline.com` or a sovereign cloud's.
    pub login_url: Url,
    /// `https://graph.microsoft.com` or a sovereign cloud's.
    pub graph_url: Url,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<hidden>")
            .field("login_url", &self.login_url.as_str())
            .field("graph_url", &self.graph_url.as_str())
            .finish()
    }
}

/// Settings of one connection. Build with [`ClientConfig::new`], then adjust fields.
#[derive(Clone)]
pub struct ClientConfig {
    pub credentials: Credentials,
    /// Extra trust roots (every certificate in the PEM text), added to the built-in roots.
    pub extra_roots_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    /// Whole-request timeout, body included.
    pub request_timeout: Duration,
    pub max_body_bytes: u64,
    /// Retries after 429 or 5xx before giving up.
    pub max_retries: u32,
    /// Retries after a timeout or a connection failure before giving up.
    pub max_transport_retries: u32,
    /// First backoff ceiling; doubled per retry.
    pub retry_base: Duration,
    /// Largest backoff, and the longest `Retry-After` the client waits out itself.
    pub retry_cap: Duration,
    /// Refuse to connect to internal addresses, checked after DNS resolution on every
    /// connection.
    pub refuse_internal_addresses: bool,
    pub on_retry: Option<RetryObserver>,
}

impl ClientConfig {
    /// Returns the defaults: 10 s connect, 60 s request, 64 MiB bodies, 5 retries on 429/5xx,
    /// 2 on transport failures, backoff 1 s doubling to 60 s.
    #[must_use]
    pub fn new(credentials: Credentials) -> Self {
        ClientConfig {
            credentials,
            extra_roots_pem: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_retries: 5,
            max_transport_retries: 2,
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(60),
            refuse_internal_addresses: false,
            on_retry: None,
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("credentials", &self.credentials)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("refuse_internal_addresses", &self.refuse_internal_addresses)
            .finish_non_exhaustive()
    }
}

/// One page of `alerts_v2` as Graph sent it.
#[derive(Debug, Default)]
pub struct AlertsPage {
    pub alerts: Vec<Box<RawValue>>,
    /// `@odata.nextLink`, when Graph has more for the same query.
    pub next_link: Option<String>,
}

/// A connection to one tenant. Cheap to clone; clones share the token and the pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    credentials: Credentials,
    transport: Transport,
    token: http::TokenCache,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client.
    ///
    /// # Errors
    /// [`ClientError::Config`] for URLs that are not http(s), unusable PEM, or an address
    /// literal that is internal while those are refused.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let creds = &config.credentials;
        for url in [&creds.login_url, &creds.graph_url] {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(ClientError::Config(format!("{url} is not an http(s) URL")));
            }
            // Link-local and metadata literals are refused even when private tenants are allowed.
            if let Some(ip) = http::refused_literal(url, !config.refuse_internal_addresses) {
                return Err(ClientError::Config(format!(
                    "{url} points to an internal address ({ip})"
                )));
            }
        }
        // Neither Entra nor Graph redirects these calls; following one could carry the secret
        // or the token somewhere unexpected: the client follows none.
        let http = http::build_client(&http::ClientOptions {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            user_agent: concat!("dossier/", env!("CARGO_PKG_VERSION")),
            refuse_internal_addresses: config.refuse_internal_addresses,
            extra_roots_pem: config.extra_roots_pem.as_deref(),
        })
        .map_err(ClientError::Config)?;
        Ok(Client {
            inner: Arc::new(Inner {
                transport: Transport {
                    http,
                    backoff: http::Backoff {
                        base: config.retry_base,
                        cap: config.retry_cap,
                    },
                    max_retries: config.max_retries,
                    max_transport_retries: config.max_transport_retries,
                    max_body_bytes: config.max_body_bytes,
                    on_retry: config.on_retry.clone(),
                },
                credentials: config.credentials,
                token: http::TokenCache::default(),
            }),
        })
    }

    /// Returns the credentials' Graph root.
    #[must_use]
    pub fn graph_url(&self) -> &Url {
        &self.inner.credentials.graph_url
    }

    /// Fetches one page of `GET /v1.0/security/alerts_v2` for `q`.
    ///
    /// # Errors
    /// Any [`ClientError`]; a body that is not an alerts list is `BadResponse`.
    pub async fn alerts(&self, q: &AlertQuery) -> Result<AlertsPage, ClientError> {
        let url = q.url(self.graph_url());
        let page = self.alerts_at(url).await?;
        if page.alerts.len() > q.top as usize {
            return Err(ClientError::BadResponse(format!(
                "a page of at most {} alerts held {}",
                q.top,
                page.alerts.len()
            )));
        }
        Ok(page)
    }

    /// Follows an `@odata.nextLink` Graph gave for an alerts query.
    ///
    /// # Errors
    /// `Rejected` (400) for a link that is not an `alerts_v2` URL of the configured Graph: the
    /// token is never sent anywhere else. Otherwise as [`Client::alerts`].
    pub async fn alerts_link(&self, link: &str) -> Result<AlertsPage, ClientError> {
        let url = Url::parse(link)
            .ok()
            .filter(|u| is_own_link(u, self.graph_url()));
        let Some(url) = url else {
            return Err(ClientError::Rejected {
                status: 400,
                code: None,
                message: Some("the walk's next link is not Microsoft Graph's alerts_v2".into()),
            });
        };
        self.alerts_at(url).await
    }

    async fn alerts_at(&self, url: Url) -> Result<AlertsPage, ClientError> {
        #[derive(Deserialize)]
        struct List {
            value: Vec<Box<RawValue>>,
            #[serde(rename = "@odata.nextLink")]
            next_link: Option<String>,
        }
        let body = self.graph(Method::GET, url, None).await?;
        let list: List = serde_json::from_slice(&body)
            .map_err(|e| ClientError::BadResponse(format!("alerts_v2: {e}")))?;
        Ok(AlertsPage {
            alerts: list.value,
            next_link: list.next_link.filter(|l| !l.trim().is_empty()),
        })
    }

    /// Sends `PATCH /v1.0/security/alerts_v2/{id}` with `body` (PRODUCERS.md §1.7).
    ///
    /// # Errors
    /// Any [`ClientError`]; a 403 for missing roles names `SecurityAlert.ReadWrite.All`.
    pub async fn update_alert(
        &self,
        id: &str,
        body: &serde_json::Value,
    ) -> Result<(), ClientError> {
        let mut url = alerts_url(self.graph_url());
        url.path_segments_mut()
            .map_err(|()| ClientError::Config("graph_url cannot be a base".into()))?
            .push(id);
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Config(e.to_string()))?;
        match self.graph(Method::PATCH, url, Some(body)).await {
            Err(ClientError::ConsentPending { .. }) => {
                Err(ClientError::ConsentPending { write: true })
            }
            other => other.map(|_| ()),
        }
    }

    /// A Graph call with the kept token; a 401 renews the token once.
    async fn graph(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut renewed = false;
        loop {
            let token = self.token().await?;
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, token.clone());
            // Newer `detectionSource` values arrive as `unknownFutureValue` without it (§1.3).
            headers.insert(
                HeaderName::from_static("prefer"),
                HeaderValue::from_static("include-unknown-enum-members"),
            );
            let call = Call {
                method: method.clone(),
                endpoint: "alerts_v2",
                url: url.clone(),
                headers,
                body: body.clone().map(|b| ("application/json", b)),
                api: Api::Graph,
            };
            match self.inner.transport.execute(&call).await {
                Err(ClientError::TokenRefused { .. }) if !renewed => {
                    renewed = true;
                    self.forget(&token).await;
                }
                Err(e @ ClientError::ConsentPending { .. }) => {
                    // A token carries the roles granted when it was issued: once an admin has
                    // given consent, only a new token has them (§1.2). The next try asks for one.
                    self.forget(&token).await;
                    return Err(e);
                }
                other => return other,
            }
        }
    }

    /// Returns the kept token, fetching a new one when there is none or it is due.
    async fn token(&self) -> Result<HeaderValue, ClientError> {
        self.inner.token.get_or_fetch(self.fetch_token()).await
    }

    /// Drops the kept token if it is still `refused`.
    async fn forget(&self, refused: &HeaderValue) {
        self.inner.token.forget(refused).await;
    }

    /// `POST {login}/{tenant}/oauth2/v2.0/token` with the client credentials (§1.2).
    async fn fetch_token(&self) -> Result<Token, ClientError> {
        #[derive(Deserialize)]
        struct Grant {
            access_token: String,
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
        }
        let c = &self.inner.credentials;
        let mut url = c.login_url.clone();
        url.set_query(None);
        url.path_segments_mut()
            .map_err(|()| ClientError::Config("login_url cannot be a base".into()))?
            .pop_if_empty()
            .extend([c.tenant_id.as_str(), "oauth2", "v2.0", "token"]);
        let scope = format!("{}/.default", c.graph_url.as_str().trim_end_matches('/'));
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &c.client_id)
            .append_pair("client_secret", c.client_secret.expose_secret())
            .append_pair("scope", &scope)
            .finish();
        let call = Call {
            method: Method::POST,
            endpoint: "token",
            url,
            headers: HeaderMap::new(),
            body: Some(("application/x-www-form-urlencoded", form.into_bytes())),
            api: Api::Entra,
        };
        let started = Instant::now();
        let body = self.inner.transport.execute(&call).await?;
        let grant: Grant = serde_json::from_slice(&body)
            .map_err(|e| ClientError::BadResponse(format!("token: {e}")))?;
        // `expires_in` is a number; some Entra versions sent it as a string.
        let lifetime = grant
            .expires_in
            .as_ref()
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
            .map_or(Duration::from_secs(3599), Duration::from_secs);
        let renew_at = started + lifetime.saturating_sub(RENEW_BEFORE.min(lifetime / 4));
        let mut header = HeaderValue::from_str(&format!("Bearer {}", grant.access_token.trim()))
            .map_err(|_| ClientError::BadResponse("token: not a header value".into()))?;
        header.set_sensitive(true);
        tracing::debug!(
            lifetime_s = lifetime.as_secs(),
            "defender access token fetched"
        );
        Ok(Token { header, renew_at })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            tenant_id: "t".into(),
            client_id: "c".into(),
            client_secret: SecretString::from("s3cr3t-value"),
            login_url: Url::parse("https://login.microsoftonline.com").unwrap(),
            graph_url: Url::parse("https://graph.microsoft.com").unwrap(),
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let cfg = ClientConfig::new(creds());
        let client = Client::new(cfg.clone()).unwrap();
        for text in [format!("{cfg:?}"), format!("{client:?}")] {
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.contains("<hidden>"), "{text}");
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut cfg = ClientConfig::new(creds());
        cfg.extra_roots_pem = Some(b"not pem".to_vec());
        assert!(matches!(Client::new(cfg), Err(ClientError::Config(_))));
        let mut cfg = ClientConfig::new(creds());
        cfg.credentials.graph_url = Url::parse("ftp://graph.microsoft.com").unwrap();
        assert!(matches!(Client::new(cfg), Err(ClientError::Config(_))));
        let mut cfg = ClientConfig::new(creds());
        cfg.credentials.login_url = Url::parse("https://169.254.169.254").unwrap();
        cfg.refuse_internal_addresses = true;
        let e = Client::new(cfg).unwrap_err().to_string();
        assert!(e.contains("internal address"), "{e}");
    }
}
