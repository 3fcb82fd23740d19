//! The HTTP client of the SentinelOne Management API v2.1.
//!
//! rustls only, extra trust roots from PEM, `Authorization: ApiToken …` (SENTINELONE.md §1.1),
//! a client-side throttle shared by all clones, bounded retries of what is transient, and a
//! streamed, size-capped body. The token never appears in errors, logs or `Debug` output.

mod config;
mod error;
mod notes;
mod ratelimit;
mod retry;
mod transport;

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dossier_domain::time::parse_lenient;
use reqwest::header::HeaderValue;
use reqwest::Method;
use secrecy::ExposeSecret;
use serde::Deserialize;
use url::Url;

pub use dossier_source::http::extra_roots;
use dossier_source::http::{self, Backoff};

pub use config::{ClientConfig, RetryObserver, Retrying, DEFAULT_MAX_BODY_BYTES};
pub use error::ClientError;

use crate::envelope::{parse_page, EnvelopeError, Page};
use crate::lenient::{Obj, Str, U64};
use crate::query::ThreatQuery;
use transport::{Call, Transport};

/// What `POST /users/api-token-details` says about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenDetails {
    pub created_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What `GET /system/status` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStatus {
    /// `ok` when the console is healthy.
    pub health: Option<String>,
}

/// A connection to one tenant. Cheap to clone; clones share the connection pool and the
/// rate limit.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    root: Url,
    transport: Transport,
    /// Kept for `api-token-details`, whose body names the token.
    token: secrecy::SecretString,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_root", &self.inner.root.as_str())
            .field("token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a URL that is not http(s), a token that cannot go in a
    /// header, unusable PEM, or a rate that is not a positive number.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "a client is made from a configuration its caller hands over and no longer needs"
    )]
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let root = config::api_root(&config.base_url).map_err(ClientError::Config)?;
        let rate = config.max_requests_per_sec;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ClientError::Config(
                "max_requests_per_sec must be a positive number".into(),
            ));
        }
        let token = config.token.expose_secret().trim();
        if token.is_empty() {
            return Err(ClientError::Config("the API token is empty".into()));
        }
        // Never echo the token, not even in this message.
        let mut auth = HeaderValue::from_str(&format!("ApiToken {token}")).map_err(|_| {
            ClientError::Config("the API token contains characters not allowed in a header".into())
        })?;
        auth.set_sensitive(true);

        // Link-local and metadata literals are refused even when private tenants are allowed.
        if let Some(ip) = http::refused_literal(&config.base_url, !config.refuse_internal_addresses)
        {
            return Err(ClientError::Config(format!(
                "the tenant URL points to an internal address ({ip})"
            )));
        }
        let http = http::build_client(&http::ClientOptions {
            connect_timeout: config.connect_timeout,
            request_timeout: config.request_timeout,
            user_agent: &config.user_agent,
            refuse_internal_addresses: config.refuse_internal_addresses,
            extra_roots_pem: config.extra_roots_pem.as_deref(),
        })
        .map_err(ClientError::Config)?;
        let transport = Transport {
            http,
            auth,
            limiter: ratelimit::for_token(&config.base_url, token, rate, config.burst),
            backoff: Backoff {
                base: config.backoff_base,
                cap: config.backoff_cap,
            },
            max_retries: config.max_retries,
            max_transport_retries: config.max_transport_retries,
            max_body_bytes: config.max_body_bytes,
            on_retry: config.on_retry.clone(),
        };
        let token = secrecy::SecretString::from(token.to_owned());
        Ok(Client {
            inner: Arc::new(Inner {
                root,
                transport,
                token,
            }),
        })
    }

    /// Returns the API root this client talks to (`…/web/api/v2.1/`).
    #[must_use]
    pub fn api_root(&self) -> &Url {
        &self.inner.root
    }

    /// Fetches one page of `GET /threats`.
    ///
    /// # Errors
    /// Any [`ClientError`]; a body that is not a threats page is `BadResponse`.
    pub async fn threats_page(&self, q: &ThreatQuery) -> Result<Page, ClientError> {
        let url = self.url("threats", &q.to_pairs())?;
        let transport = &self.inner.transport;
        let mut cut = 0u32;
        loop {
            let body = self
                .call(Method::GET, "threats", url.clone(), None, true)
                .await?;
            match parse_page(&body) {
                Ok(page) => return check_page(q, page),
                // A page cut short on its way is asked for again, like a dropped connection:
                // the tenant is not at fault, and the next answer is usually whole.
                Err(e @ EnvelopeError::Truncated(_)) if cut < transport.max_transport_retries => {
                    tracing::warn!(endpoint = "threats", error = %e, "a page was cut off; asking again");
                    tokio::time::sleep(transport.backoff.delay(cut)).await;
                    cut += 1;
                }
                Err(e) => return Err(ClientError::BadResponse(e.to_string())),
            }
        }
    }

    /// Asks when the token was created and when it expires (§3, §6.7).
    ///
    /// # Errors
    /// `Unauthorized` when the token itself is refused. `IntrospectionUnavailable` when the
    /// console will not describe this token (seen with service-user tokens): callers then treat
    /// the expiry as unknown — as they should for any error other than `Unauthorized`.
    pub async fn token_details(&self) -> Result<TokenDetails, ClientError> {
        #[derive(Default, Deserialize)]
        #[serde(default, rename_all = "camelCase")]
        struct Details {
            created_at: Str,
            expires_at: Str,
        }
        let body = serde_json::json!({ "data": { "apiToken": self.inner.token.expose_secret() } });
        let body = serde_json::to_vec(&body).map_err(|e| ClientError::Config(e.to_string()))?;
        let url = self.url("users/api-token-details", &[])?;
        let resp = self
            .call(
                Method::POST,
                "users/api-token-details",
                url,
                Some(body),
                true,
            )
            .await;
        let resp = resp.map_err(|e| match e {
            ClientError::Forbidden { code, .. } => {
                ClientError::IntrospectionUnavailable { status: 403, code }
            }
            ClientError::Rejected { status, code, .. } => {
                ClientError::IntrospectionUnavailable { status, code }
            }
            other => other,
        })?;
        let d: Details = data_object(&resp, "users/api-token-details")?;
        Ok(TokenDetails {
            created_at: d.created_at.as_deref().and_then(parse_lenient),
            expires_at: d.expires_at.as_deref().and_then(parse_lenient),
        })
    }

    /// Reads `GET /system/status`, which needs no authentication; the token is not sent.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn system_status(&self) -> Result<SystemStatus, ClientError> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Status {
            health: Str,
        }
        let url = self.url("system/status", &[])?;
        let body = self
            .call(Method::GET, "system/status", url, None, false)
            .await?;
        let s: Status = data_object(&body, "system/status")?;
        Ok(SystemStatus {
            health: s.health.into_inner(),
        })
    }

    /// Checks URL, TLS, token and permission with a one-threat query.
    ///
    /// # Errors
    /// The [`ClientError`] that a poll would hit.
    pub async fn verify(&self) -> Result<(), ClientError> {
        let q = ThreatQuery {
            limit: 1,
            ..ThreatQuery::default()
        };
        self.threats_page(&q).await.map(|_| ())
    }

    /// Sets the analyst verdict of threats; returns how many the console changed.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn set_analyst_verdict(
        &self,
        ids: &[String],
        verdict: &str,
    ) -> Result<u64, ClientError> {
        let data = serde_json::json!({ "analystVerdict": verdict });
        self.threat_action("threats/analyst-verdict", ids, data)
            .await
    }

    /// Sets the incident status of threats; returns how many the console changed.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn set_incident_status(
        &self,
        ids: &[String],
        status: &str,
    ) -> Result<u64, ClientError> {
        let data = serde_json::json!({ "incidentStatus": status });
        self.threat_action("threats/incident", ids, data).await
    }

    /// Mitigates threats: `kill`, `quarantine`, `remediate` or `rollback-remediation`; returns
    /// how many the console acted on.
    ///
    /// # Errors
    /// Any [`ClientError`]; an unknown action is refused before anything is sent.
    pub async fn mitigate(&self, ids: &[String], action: &str) -> Result<u64, ClientError> {
        let endpoint = match action {
            "kill" => "threats/mitigate/kill",
            "quarantine" => "threats/mitigate/quarantine",
            "remediate" => "threats/mitigate/remediate",
            "rollback-remediation" => "threats/mitigate/rollback-remediation",
            other => return Err(ClientError::Config(format!("no mitigation `{other}`"))),
        };
        self.action(endpoint, serde_json::json!({ "ids": ids }), None)
            .await
    }

    /// Disconnects agents from the network (`disconnect`) or reconnects them (`connect`);
    /// returns how many the console acted on.
    ///
    /// # Errors
    /// Any [`ClientError`]; an unknown action is refused before anything is sent.
    pub async fn agents_network(
        &self,
        agent_ids: &[String],
        action: &str,
    ) -> Result<u64, ClientError> {
        let endpoint = match action {
            "disconnect" => "agents/actions/disconnect",
            "connect" => "agents/actions/connect",
            other => return Err(ClientError::Config(format!("no agent action `{other}`"))),
        };
        self.action(endpoint, serde_json::json!({ "ids": agent_ids }), None)
            .await
    }

    /// Adds the file hashes of threats to the blocklist at `scope` (`account`, `site`, …);
    /// returns how many threats the console acted on.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn add_to_blocklist(&self, ids: &[String], scope: &str) -> Result<u64, ClientError> {
        let data = serde_json::json!({ "targetScope": scope });
        self.action(
            "threats/add-to-blacklist",
            serde_json::json!({ "ids": ids }),
            Some(data),
        )
        .await
    }

    async fn threat_action(
        &self,
        endpoint: &'static str,
        ids: &[String],
        data: serde_json::Value,
    ) -> Result<u64, ClientError> {
        self.action(endpoint, serde_json::json!({ "ids": ids }), Some(data))
            .await
    }

    /// Posts `{"filter":…,"data":…}` to a write endpoint and reads `data.affected`.
    async fn action(
        &self,
        endpoint: &'static str,
        filter: serde_json::Value,
        data: Option<serde_json::Value>,
    ) -> Result<u64, ClientError> {
        #[derive(Default, Deserialize)]
        #[serde(default)]
        struct Affected {
            affected: U64,
        }
        if filter["ids"].as_array().is_some_and(Vec::is_empty) {
            return Ok(0);
        }
        let mut body = serde_json::json!({ "filter": filter });
        if let Some(data) = data {
            body["data"] = data;
        }
        let body = serde_json::to_vec(&body).map_err(|e| ClientError::Config(e.to_string()))?;
        let url = self.url(endpoint, &[])?;
        let resp = self
            .call(Method::POST, endpoint, url, Some(body), true)
            .await?;
        let a: Affected = data_object(&resp, endpoint)?;
        a.affected
            .0
            .ok_or_else(|| ClientError::BadResponse(format!("{endpoint}: no `data.affected`")))
    }

    fn url(&self, endpoint: &str, query: &[(&'static str, String)]) -> Result<Url, ClientError> {
        let mut url = self
            .inner
            .root
            .join(endpoint)
            .map_err(|e| ClientError::Config(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn call(
        &self,
        method: Method,
        endpoint: &str,
        url: Url,
        body: Option<Vec<u8>>,
        auth: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let call = Call {
            method,
            endpoint,
            url,
            body,
            auth,
        };
        self.inner.transport.execute(&call).await
    }
}

/// Reads `{"data":{…}}` into `T`, leniently.
fn data_object<'de, T: Deserialize<'de>>(
    body: &'de [u8],
    endpoint: &str,
) -> Result<T, ClientError> {
    #[derive(Deserialize)]
    #[serde(bound = "T: Deserialize<'de>")]
    struct Data<T> {
        #[serde(default)]
        data: Obj<T>,
    }
    let parsed: Obj<Data<T>> = serde_json::from_slice(body)
        .map_err(|e| ClientError::BadResponse(format!("{endpoint}: {e}")))?;
    parsed
        .0
        .and_then(|d| d.data.0)
        .ok_or_else(|| ClientError::BadResponse(format!("{endpoint}: no `data` object")))
}

/// The longest `nextCursor` taken: the API's are about a hundred characters, and a cursor is
/// sent back in the URL and kept in every checkpoint.
pub const MAX_CURSOR_LEN: usize = 4096;

/// Refuses a page that is not what the API sends for `q`: one holding more threats than asked
/// for (a tenant, or something posing as one, could make a worker hold millions at once), or
/// one whose cursor would keep a walk going forever (the very cursor it was asked with) or
/// could not be sent back (one longer than [`MAX_CURSOR_LEN`]). An empty page that hands back
/// the cursor it was asked with is the end of the walk, like an empty last page
/// (SENTINELONE.md §6.5): there is nothing after it to read.
fn check_page(q: &ThreatQuery, mut page: Page) -> Result<Page, ClientError> {
    if page.threats.len() > q.page_limit() {
        return Err(ClientError::BadResponse(format!(
            "a page of at most {} threats held {}",
            q.page_limit(),
            page.threats.len()
        )));
    }
    let Some(next) = page.next_cursor.as_deref().map(str::trim) else {
        return Ok(page);
    };
    if next.len() > MAX_CURSOR_LEN {
        return Err(ClientError::BadResponse(format!(
            "a next cursor of {} characters (at most {MAX_CURSOR_LEN})",
            next.len()
        )));
    }
    if q.cursor.as_deref().map(str::trim) == Some(next) {
        if !page.threats.is_empty() {
            return Err(ClientError::BadResponse(
                "the next cursor is the one the page was asked with: the walk would never end"
                    .into(),
            ));
        }
        page.next_cursor = None;
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn client() -> Client {
        let cfg = ClientConfig::new(
            Url::parse("https://t.sentinelone.net").unwrap(),
            secrecy::SecretString::from("tok-123"),
        );
        Client::new(cfg).unwrap()
    }

    #[test]
    fn clones_share_one_rate_limiter() {
        let a = client();
        let b = a.clone();
        assert!(Arc::ptr_eq(
            &a.inner.transport.limiter,
            &b.inner.transport.limiter
        ));
    }

    /// SentinelOne counts requests per token: two connectors with one token share one budget,
    /// and a different token (or tenant) has its own.
    #[test]
    fn clients_with_one_token_share_its_rate_limit() {
        let make = |url: &str, token: &str| {
            Client::new(ClientConfig::new(
                Url::parse(url).unwrap(),
                secrecy::SecretString::from(token.to_owned()),
            ))
            .unwrap()
        };
        let a = make("https://shared.sentinelone.net", "tok-shared");
        let b = make("https://SHARED.sentinelone.net/", " tok-shared ");
        let other_token = make("https://shared.sentinelone.net", "tok-other");
        let other_tenant = make("https://elsewhere.sentinelone.net", "tok-shared");
        let limiter = |c: &Client| Arc::clone(&c.inner.transport.limiter);
        assert!(Arc::ptr_eq(&limiter(&a), &limiter(&b)));
        assert!(!Arc::ptr_eq(&limiter(&a), &limiter(&other_token)));
        assert!(!Arc::ptr_eq(&limiter(&a), &limiter(&other_tenant)));
    }

    #[test]
    fn urls_carry_comma_joined_lists_and_utc_times() {
        let c = client();
        let q = ThreatQuery {
            site_ids: vec!["1".into(), "2".into()],
            updated_at_gte: parse_lenient("2024-01-02T03:04:05Z"),
            ..ThreatQuery::default()
        };
        let url = c.url("threats", &q.to_pairs()).unwrap();
        assert_eq!(
            url.as_str(),
            "https://t.sentinelone.net/web/api/v2.1/threats?limit=1000\
             &updatedAt__gte=2024-01-02T03%3A04%3A05.000000Z&siteIds=1%2C2"
        );
    }

    #[test]
    fn bad_configs_are_refused_without_echoing_the_token() {
        let mut cfg = ClientConfig::new(
            Url::parse("https://t.sentinelone.net").unwrap(),
            secrecy::SecretString::from("bad\ntoken-xyz"),
        );
        let e = Client::new(cfg.clone()).unwrap_err();
        assert_eq!(e.kind(), "config");
        assert!(!format!("{e} {e:?}").contains("token-xyz"));
        cfg.token = secrecy::SecretString::from("ok");
        cfg.max_requests_per_sec = 0.0;
        assert!(matches!(
            Client::new(cfg.clone()),
            Err(ClientError::Config(_))
        ));
        cfg.max_requests_per_sec = 10.0;
        cfg.extra_roots_pem = Some(b"not pem".to_vec());
        assert!(matches!(Client::new(cfg), Err(ClientError::Config(_))));
    }
}
