//! The HTTP client of the Falcon OAuth 2.0 and Alerts APIs.
//!
//! rustls only, extra trust roots from PEM, a bearer token fetched with the client
//! credentials, cached and renewed before it expires (§2.3), bounded retries that honour the
//! API's rate-limit headers (§2.5), and a streamed, size-capped body. The client secret and the
//! tokens never appear in errors, logs or `Debug` output.

mod config;
mod error;
mod transport;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use dossier_domain::time::parse_lenient;
use reqwest::header::HeaderValue;
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;
use url::Url;

pub use dossier_source::http::extra_roots;
use dossier_source::http::{self, Token};

pub use config::{ClientConfig, DEFAULT_MAX_BODY_BYTES};
pub use error::ClientError;

use crate::query::{AlertQuery, MAX_IDS_PER_CALL};
use transport::{Backoff, Call, CallError, Reply, Transport};

/// `POST /oauth2/token`.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// `GET /alerts/queries/alerts/v2`: composite ids.
pub const QUERY_PATH: &str = "/alerts/queries/alerts/v2";
/// `POST /alerts/entities/alerts/v2`: alerts by composite id.
pub const ENTITIES_PATH: &str = "/alerts/entities/alerts/v2";
/// `PATCH /alerts/entities/alerts/v3`: actions on alerts.
pub const UPDATE_PATH: &str = "/alerts/entities/alerts/v3";

/// The lifetime assumed when a token response gives none: `FalconPy`'s default, and what the
/// API answers (§2.3).
const DEFAULT_TOKEN_SECS: u64 = 1799;

/// How long before a token's expiry it is renewed: five minutes (`FalconPy` renews 120–1,200 s
/// early, §2.3), or a quarter of the lifetime for short-lived tokens.
#[must_use]
pub fn renew_margin(lifetime: Duration) -> Duration {
    (lifetime / 4).min(Duration::from_secs(300))
}

/// One page of a walk: the endpoint alerts, in the order of the query, and where the walk
/// goes on.
#[derive(Debug, Default)]
pub struct AlertPage {
    pub records: Vec<Box<RawValue>>,
    /// How many ids the query returned (records of other products are left out).
    pub ids: usize,
    pub next_cursor: Option<String>,
    /// The one alert of a page of one that was over the size cap, named and read past.
    pub unreadable: Vec<dossier_source::Unreadable>,
}

/// A connection to one Falcon cloud. Cheap to clone; clones share the connection pool and
/// the token.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    root: Url,
    client_id: String,
    secret: SecretString,
    member_cid: Option<String>,
    expected_cloud: Option<crate::Cloud>,
    transport: Transport,
    token: http::TokenCache,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.root.as_str())
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds a client.
    ///
    /// # Errors
    /// [`ClientError::Config`] for a URL that is not http(s) or has no host, an empty client id
    /// or secret, a member CID that is not 32 hex digits, or unusable PEM.
    #[expect(
        clippy::needless_pass_by_value,
        reason = "a client is made from a configuration its caller hands over and no longer needs"
    )]
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let root = api_root(&config.base_url).map_err(ClientError::Config)?;
        if config.client_id.is_empty() || config.client_secret.expose_secret().trim().is_empty() {
            return Err(ClientError::Config(
                "the client id and secret are required".into(),
            ));
        }
        if let Some(cid) = &config.member_cid {
            if !is_cid(cid) {
                return Err(ClientError::Config(
                    "member_cid must be 32 hexadecimal digits".into(),
                ));
            }
        }
        // Link-local and metadata literals are refused even when private tenants are allowed.
        if let Some(ip) = http::refused_literal(&config.base_url, !config.refuse_internal_addresses)
        {
            return Err(ClientError::Config(format!(
                "the base URL points to an internal address ({ip})"
            )));
        }
        // The API does not redirect; following one could carry the token elsewhere.
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
            backoff: Backoff {
                base: config.backoff_base,
                cap: config.backoff_cap,
            },
            max_retries: config.max_retries,
            max_transport_retries: config.max_transport_retries,
            max_body_bytes: config.max_body_bytes,
            on_retry: config.on_retry.clone(),
            pause: std::sync::Mutex::new(None),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                root,
                client_id: config.client_id.clone(),
                secret: SecretString::from(config.client_secret.expose_secret().trim().to_owned()),
                member_cid: config.member_cid.clone(),
                expected_cloud: config.expected_cloud,
                transport,
                token: http::TokenCache::default(),
            }),
        })
    }

    /// Returns the API base URL this client talks to.
    #[must_use]
    pub fn base_url(&self) -> &Url {
        &self.inner.root
    }

    /// Checks base URL, TLS, credentials, cloud and the Alerts: Read scope with a one-id query.
    ///
    /// # Errors
    /// The [`ClientError`] a poll would hit.
    pub async fn verify(&self) -> Result<(), ClientError> {
        let q = AlertQuery::from_window(&dossier_source::Window {
            updated_gte: None,
            updated_gt: None,
            cursor: None,
            limit: 1,
        })
        .map_err(ClientError::Config)?;
        self.query_ids(&q).await.map(|_| ())
    }

    /// Reads one page of a walk: the ids of `GET /alerts/queries/alerts/v2`, then their alerts
    /// by `POST /alerts/entities/alerts/v2`, at most 1,000 ids a call (§2.1).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn alerts_page(&self, q: &AlertQuery) -> Result<AlertPage, ClientError> {
        let ids = self.query_ids(q).await?;
        if ids.is_empty() {
            return Ok(AlertPage::default());
        }
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_IDS_PER_CALL) {
            // The query asked for endpoint alerts only (`product:'epp'`); one that slips
            // through anyway is refused by the mapping, which the worker counts and logs.
            match self.alerts_by_id(chunk).await {
                Ok(alerts) => records.extend(alerts),
                // One alert alone over the cap: named by its id (and its update time, from
                // the outline of the response) and read past.
                Err(ClientError::TooLarge { limit, outline }) if ids.len() == 1 => {
                    return Ok(over_the_cap(q, &ids[0], limit, &outline));
                }
                Err(e) => return Err(e),
            }
        }
        // The page's latest update time matters only when the next page must move the walk's
        // bound past the offset ceiling: only then is every alert read for it, rather than
        // parsing each alert once more on every page.
        let page_max = if q.moves_bound(ids.len()) {
            let now = Utc::now();
            records
                .iter()
                .filter_map(|r| Peek::of(r).updated)
                .filter_map(|t| dossier_source::credible_updated_at(t, now))
                .max()
        } else {
            None
        };
        Ok(AlertPage {
            records,
            ids: ids.len(),
            next_cursor: q.next(ids.len(), page_max).map(|c| c.encode()),
            unreadable: Vec::new(),
        })
    }

    async fn query_ids(&self, q: &AlertQuery) -> Result<Vec<String>, ClientError> {
        #[derive(Deserialize)]
        struct Ids {
            #[serde(default)]
            resources: Option<Vec<String>>,
        }
        let mut url = self.url(QUERY_PATH);
        url.query_pairs_mut()
            .extend_pairs(q.to_pairs().iter().map(|(k, v)| (*k, v.as_str())));
        let body = self.api(Method::GET, QUERY_PATH, url, None, false).await?;
        let ids: Ids = serde_json::from_slice(&body)
            .map_err(|e| ClientError::BadResponse(format!("{QUERY_PATH}: {e}")))?;
        let ids = ids.resources.unwrap_or_default();
        if ids.len() > q.limit as usize {
            return Err(ClientError::BadResponse(format!(
                "{QUERY_PATH}: {} ids for a limit of {}",
                ids.len(),
                q.limit
            )));
        }
        Ok(ids)
    }

    /// Fetches alerts by composite id (at most [`MAX_IDS_PER_CALL`]).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn alerts_by_id(&self, ids: &[String]) -> Result<Vec<Box<RawValue>>, ClientError> {
        #[derive(Deserialize)]
        struct Alerts {
            #[serde(default)]
            resources: Option<Vec<Box<RawValue>>>,
        }
        let body = serde_json::to_vec(&serde_json::json!({ "composite_ids": ids }))
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let url = self.url(ENTITIES_PATH);
        let reply = self
            .api(Method::POST, ENTITIES_PATH, url, Some(body), false)
            .await?;
        let alerts: Alerts = serde_json::from_slice(&reply)
            .map_err(|e| ClientError::BadResponse(format!("{ENTITIES_PATH}: {e}")))?;
        Ok(alerts.resources.unwrap_or_default())
    }

    /// Applies actions (`update_status`, `add_tag`, …) to alerts with `PATCH
    /// /alerts/entities/alerts/v3` `{"composite_ids","action_parameters"}`, at most 1,000 ids
    /// a call. Needs the Alerts: Write scope.
    ///
    /// # Errors
    /// Any [`ClientError`]; a 403 is [`ClientError::Forbidden`] with `write`.
    pub async fn update_alerts(
        &self,
        ids: &[String],
        actions: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let parameters: Vec<serde_json::Value> = actions
            .iter()
            .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
            .collect();
        for chunk in ids.chunks(MAX_IDS_PER_CALL) {
            let body = serde_json::json!({
                "composite_ids": chunk,
                "action_parameters": parameters,
            });
            let body = serde_json::to_vec(&body).map_err(|e| ClientError::Config(e.to_string()))?;
            let url = self.url(UPDATE_PATH);
            self.api(Method::PATCH, UPDATE_PATH, url, Some(body), true)
                .await?;
        }
        Ok(())
    }

    fn url(&self, path: &str) -> Url {
        let mut url = self.inner.root.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }

    /// An authenticated API call: a 401 renews the token once (it may have been revoked or
    /// expired early), a second 401 means the credentials no longer work (§2.8).
    async fn api(
        &self,
        method: Method,
        path: &str,
        url: Url,
        body: Option<Vec<u8>>,
        write: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let mut renewed = false;
        loop {
            let auth = self.bearer().await?;
            let call = Call {
                method: method.clone(),
                path,
                url: url.clone(),
                body: body.clone().map(|b| ("application/json", b)),
                auth: Some(auth.clone()),
            };
            return match self.inner.transport.execute(&call).await {
                Ok(Reply { body, .. }) => Ok(body),
                Err(CallError::Status { status: 401, .. }) if !renewed => {
                    self.forget_token(&auth).await;
                    renewed = true;
                    continue;
                }
                Err(CallError::Status {
                    status: 401,
                    message,
                }) => Err(ClientError::CredentialsRejected {
                    status: 401,
                    message,
                }),
                Err(CallError::Status {
                    status: 403,
                    message,
                }) => Err(ClientError::Forbidden { message, write }),
                Err(CallError::Status { status, message }) => {
                    Err(ClientError::Rejected { status, message })
                }
                Err(CallError::Client(e)) => Err(e),
            };
        }
    }

    /// The cached token's `Authorization` value, fetching a new token when there is none or
    /// it is due for renewal.
    async fn bearer(&self) -> Result<HeaderValue, ClientError> {
        self.inner.token.get_or_fetch(self.fetch_token()).await
    }

    async fn forget_token(&self, used: &HeaderValue) {
        self.inner.token.forget(used).await;
    }

    async fn fetch_token(&self) -> Result<Token, ClientError> {
        #[derive(Deserialize)]
        struct Issued {
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let form = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("client_id", &self.inner.client_id);
            form.append_pair("client_secret", self.inner.secret.expose_secret());
            if let Some(cid) = &self.inner.member_cid {
                form.append_pair("member_cid", cid);
            }
            form.finish().into_bytes()
        };
        let call = Call {
            method: Method::POST,
            path: TOKEN_PATH,
            url: self.url(TOKEN_PATH),
            body: Some(("application/x-www-form-urlencoded", form)),
            auth: None,
        };
        let started = Instant::now();
        let reply = match self.inner.transport.execute(&call).await {
            Ok(reply) => reply,
            Err(CallError::Status {
                status: status @ (400 | 401 | 403),
                message,
            }) => return Err(ClientError::CredentialsRejected { status, message }),
            Err(CallError::Status { status, message }) => {
                return Err(ClientError::Rejected { status, message })
            }
            Err(CallError::Client(ClientError::Retired { status, path })) => {
                return Err(ClientError::BadResponse(format!(
                    "no Falcon API at this base URL (http {status} on {path})"
                )))
            }
            Err(CallError::Client(e)) => return Err(e),
        };
        self.check_region(&reply)?;
        let issued: Issued = serde_json::from_slice(&reply.body)
            .map_err(|e| ClientError::BadResponse(format!("{TOKEN_PATH}: {e}")))?;
        let token = issued
            .access_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| ClientError::BadResponse(format!("{TOKEN_PATH}: no access_token")))?;
        let mut header =
            HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
                ClientError::BadResponse(format!(
                    "{TOKEN_PATH}: a token that cannot go in a header"
                ))
            })?;
        header.set_sensitive(true);
        let lifetime = Duration::from_secs(issued.expires_in.unwrap_or(DEFAULT_TOKEN_SECS));
        tracing::debug!(
            expires_in_s = lifetime.as_secs(),
            "crowdstrike token issued"
        );
        Ok(Token {
            header,
            renew_at: started + lifetime.saturating_sub(renew_margin(lifetime)),
        })
    }

    /// Refuses a token issued for another cloud than the configured one (§2.3): the secret
    /// must only ever go to the configured host, so the client never follows `X-Cs-Region`.
    fn check_region(&self, reply: &Reply) -> Result<(), ClientError> {
        let Some(expected) = self.inner.expected_cloud else {
            return Ok(());
        };
        let region = reply
            .headers
            .get("x-cs-region")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|r| !r.is_empty());
        match region {
            Some(r) if !r.eq_ignore_ascii_case(expected.as_str()) => Err(ClientError::WrongCloud {
                region: r
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(32)
                    .collect(),
                configured: expected.as_str().to_owned(),
            }),
            _ => Ok(()),
        }
    }
}

/// What the client reads of an alert without mapping it: its update time.
/// The page of the one alert `id`, over the size cap: no record, the alert named as
/// unreadable, and the walk going on past it as it would past that alert read whole.
fn over_the_cap(
    q: &AlertQuery,
    id: &str,
    limit: u64,
    outline: &dossier_source::outline::Outline,
) -> AlertPage {
    let updated = outline
        .get("/resources/0/updated_timestamp")
        .map(str::to_owned);
    let now = Utc::now();
    let page_max = updated
        .as_deref()
        .and_then(parse_lenient)
        .and_then(|t| dossier_source::credible_updated_at(t, now));
    let skipped = dossier_source::Unreadable::named(
        Some(id.to_owned()),
        updated,
        dossier_source::too_large_reason(outline.bytes, limit),
    );
    AlertPage {
        records: Vec::new(),
        ids: 1,
        next_cursor: q.next(1, page_max).map(|c| c.encode()),
        unreadable: vec![skipped],
    }
}

struct Peek {
    updated: Option<DateTime<Utc>>,
}

impl Peek {
    fn of(record: &RawValue) -> Peek {
        #[derive(Deserialize, Default)]
        #[serde(default)]
        struct Fields {
            updated_timestamp: serde_json::Value,
        }
        let f: Fields = serde_json::from_str(record.get()).unwrap_or_default();
        Peek {
            updated: f.updated_timestamp.as_str().and_then(parse_lenient),
        }
    }
}

/// Tells whether a text is a CID: 32 hexadecimal digits (a member CID, §2.3).
#[must_use]
pub fn is_cid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The API root for a base URL: http(s), a host, no query or fragment, no trailing slash.
fn api_root(base: &Url) -> Result<Url, String> {
    if !matches!(base.scheme(), "http" | "https") {
        return Err(format!(
            "the base URL must be https, not `{}`",
            base.scheme()
        ));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err("the base URL has no host".into());
    }
    let mut root = base.clone();
    root.set_query(None);
    root.set_fragment(None);
    let path = root.path().trim_end_matches('/').to_owned();
    root.set_path(&path);
    Ok(root)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn config(url: &str) -> ClientConfig {
        ClientConfig::new(
            Url::parse(url).unwrap(),
            "abc",
            SecretString::from("s3cr3t-value"),
        )
    }

    #[test]
    fn tokens_are_renewed_five_minutes_early_or_a_quarter_early_when_short() {
        assert_eq!(
            renew_margin(Duration::from_secs(1799)),
            Duration::from_secs(300)
        );
        assert_eq!(
            renew_margin(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(renew_margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn urls_keep_a_base_path_and_drop_trailing_slashes() {
        let c = Client::new(config("https://api.crowdstrike.com/")).unwrap();
        assert_eq!(
            c.url(QUERY_PATH).as_str(),
            "https://api.crowdstrike.com/alerts/queries/alerts/v2"
        );
        let c = Client::new(config("https://proxy.example/falcon/?x=1")).unwrap();
        assert_eq!(
            c.url(TOKEN_PATH).as_str(),
            "https://proxy.example/falcon/oauth2/token"
        );
    }

    #[test]
    fn the_cloud_checked_is_the_one_the_base_url_names() {
        assert_eq!(
            config("https://api.eu-1.crowdstrike.com").expected_cloud,
            Some(crate::Cloud::Eu1)
        );
        assert_eq!(config("https://127.0.0.1:1").expected_cloud, None);
    }

    #[test]
    fn bad_configs_are_refused_without_echoing_the_secret() {
        let mut cfg = config("ftp://api.crowdstrike.com");
        let e = Client::new(cfg.clone()).unwrap_err();
        assert!(matches!(e, ClientError::Config(_)));
        cfg.base_url = Url::parse("https://api.crowdstrike.com").unwrap();
        cfg.member_cid = Some("not-a-cid".into());
        let e = Client::new(cfg.clone()).unwrap_err();
        assert!(!format!("{e} {e:?} {cfg:?}").contains("s3cr3t"));
        cfg.member_cid = None;
        cfg.extra_roots_pem = Some(b"not pem".to_vec());
        assert!(matches!(
            Client::new(cfg.clone()),
            Err(ClientError::Config(_))
        ));
        cfg.extra_roots_pem = None;
        cfg.refuse_internal_addresses = true;
        cfg.base_url = Url::parse("https://169.254.169.254").unwrap();
        assert!(matches!(Client::new(cfg), Err(ClientError::Config(_))));
        let c = Client::new(config("https://api.crowdstrike.com")).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }
}
