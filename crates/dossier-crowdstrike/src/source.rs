//! CrowdStrike Falcon as a [`Source`]: what the generic connector worker drives.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dossier_domain::story::Verdict;
use dossier_domain::{Incident, Producer};
use dossier_source::{
    only_fields, parse_tenant_url, secret_field, text_field, Config, Configured, Connection,
    Environment, Failure, Field, Labels, Page, RetryObserver, Settings, Source, Stored, Window,
};
use serde_json::value::RawValue;
use url::Url;

use crate::client::{is_cid, Client, ClientConfig, ClientError};
use crate::cloud::Cloud;
use crate::query::AlertQuery;

/// Longest client id or secret accepted; real ones are 32 and 40 characters.
const MAX_CREDENTIAL: usize = 256;

/// A CrowdStrike connector's fields (PRODUCT.md, `POST /api/v1/connectors`).
const FIELDS: [Field; 5] = [
    Field {
        name: "cloud",
        label: "Cloud",
        help:
            "The Falcon cloud of your account, as in the console's address: falcon.crowdstrike.com \
               is us-1, falcon.us-2.crowdstrike.com us-2, falcon.eu-1.crowdstrike.com eu-1, \
               falcon.laggar.gcw.crowdstrike.com us-gov-1. Leave empty with a base URL; us-1 when \
               both are empty.",
        example: "us-1",
        secret: false,
        required: false,
        choices: &["us-1", "us-2", "eu-1", "us-gov-1"],
    },
    Field {
        name: "base_url",
        label: "API base URL",
        help: "Only when the API is reached through another address than the cloud's (a proxy); \
               otherwise leave empty and choose the cloud.",
        example: "https://api.crowdstrike.com",
        secret: false,
        required: false,
        choices: &[],
    },
    Field {
        name: "client_id",
        label: "Client ID",
        help: "In the Falcon console, Support and resources › API clients and keys › Create API \
               client, with the Alerts scope Read (and Write to write verdicts back); copy its \
               Client ID.",
        example: "4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d",
        secret: false,
        required: true,
        choices: &[],
    },
    Field {
        name: "client_secret",
        label: "Client secret",
        help: "The secret shown once when the API client is created (or reset) in Support and \
               resources › API clients and keys.",
        example: "",
        secret: true,
        required: true,
        choices: &[],
    },
    Field {
        name: "member_cid",
        label: "Member CID",
        help: "Only for an MSSP (Flight Control) parent client: the child customer's CID, 32 \
               hexadecimal characters, from Host setup and management › Deploy › Sensor \
               downloads of the child.",
        example: "",
        secret: false,
        required: false,
        choices: &[],
    },
];

/// The CrowdStrike connector kind.
#[derive(Debug, Default, Clone, Copy)]
pub struct CrowdStrike;

/// The tag CrowdStrike records an analyst's verdict with (the `tags` the mapper reads back);
/// `None` for a suspicious story, which is no verdict on the alert, so only its status is set.
#[must_use]
pub fn cs_verdict_tag(v: Verdict) -> Option<&'static str> {
    match v {
        Verdict::Malicious => Some("true_positive"),
        Verdict::Benign | Verdict::Informational => Some("false_positive"),
        Verdict::Suspicious => None,
    }
}

/// Reads the base URL and the cloud a body (or the stored connector) gives: an explicit base
/// URL wins; else the cloud's API host; us-1 when neither is given.
fn endpoint(body: &Config, stored: Option<Stored<'_>>) -> Result<(Url, Option<Cloud>), String> {
    let cloud_text = text_field(body, "cloud")?;
    let base_text = text_field(body, "base_url")?;
    let from_body = cloud_text.is_some() || base_text.is_some();
    let (cloud_text, base_text) = match stored {
        Some(s) if !from_body => (
            s.config
                .get("cloud")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            s.config
                .get("base_url")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
        ),
        _ => (cloud_text, base_text),
    };
    let cloud = match cloud_text {
        Some(c) => Some(
            Cloud::parse(&c)
                .ok_or_else(|| "cloud: must be one of us-1, us-2, eu-1, us-gov-1".to_owned())?,
        ),
        None => None,
    };
    match (base_text, cloud) {
        (Some(base), cloud) => {
            let url = parse_tenant_url(&base, "base_url")?;
            Ok((url.clone(), cloud.or_else(|| Cloud::of_base_url(&url))))
        }
        (None, cloud) => {
            let cloud = cloud.unwrap_or(Cloud::Us1);
            let url = parse_tenant_url(cloud.base_url(), "cloud")?;
            Ok((url, Some(cloud)))
        }
    }
}

impl Source for CrowdStrike {
    fn kind(&self) -> &'static str {
        "crowdstrike"
    }

    fn producer(&self) -> Producer {
        crate::producer()
    }

    fn labels(&self) -> Labels {
        Labels {
            vendor: crate::producer().vendor(),
            record_name: "alert",
        }
    }

    fn fields(&self) -> &'static [Field] {
        &FIELDS
    }

    fn configure(&self, body: &Config, current: Option<Stored<'_>>) -> Result<Configured, String> {
        only_fields(body, "crowdstrike", &FIELDS)?;
        let (tenant_url, cloud) = endpoint(body, current)?;
        let stored_text = |name: &str| {
            current.and_then(|s| {
                s.config
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            })
        };
        let client_id = match text_field(body, "client_id")? {
            Some(id) => Some(id),
            None if body.contains_key("client_id") => None,
            None => stored_text("client_id"),
        }
        .ok_or_else(|| "client_id: is required".to_owned())?;
        if client_id.len() > MAX_CREDENTIAL
            || client_id
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err("client_id: is not a CrowdStrike API client id".into());
        }
        let member_cid = match text_field(body, "member_cid")? {
            Some(cid) if is_cid(&cid) => Some(cid.to_ascii_lowercase()),
            Some(_) => return Err("member_cid: must be 32 hexadecimal characters".into()),
            None if body.contains_key("member_cid") => None,
            None => stored_text("member_cid"),
        };
        // Not text at all says so; text that is no secret says only that, never echoing it.
        text_field(body, "client_secret")?;
        let secret = secret_field(body, "client_secret", MAX_CREDENTIAL)
            .map_err(|_| "client_secret: is not a CrowdStrike API client secret".to_owned())?;
        if secret.is_none() && (current.is_none() || body.contains_key("client_secret")) {
            return Err("client_secret: is required".into());
        }
        let mut config = Config::new();
        if let Some(c) = cloud {
            config.insert("cloud".into(), c.as_str().into());
        }
        if Cloud::ALL
            .iter()
            .all(|c| tenant_url.as_str().trim_end_matches('/') != c.base_url())
        {
            config.insert(
                "base_url".into(),
                tenant_url.as_str().trim_end_matches('/').into(),
            );
        }
        config.insert("client_id".into(), client_id.into());
        if let Some(cid) = member_cid {
            config.insert("member_cid".into(), cid.into());
        }
        Ok(Configured {
            secret_urls: vec![tenant_url.clone()],
            tenant_url,
            config,
            secret,
        })
    }

    fn connect(
        &self,
        settings: Settings,
        env: &Environment,
        on_retry: Option<RetryObserver>,
    ) -> Result<Arc<dyn Connection>, Failure> {
        let text = |name: &str| settings.config.get(name).and_then(|v| v.as_str());
        let client_id = text("client_id").unwrap_or_default().to_owned();
        let mut cfg = ClientConfig::new(settings.tenant_url.clone(), &client_id, settings.secret);
        cfg.member_cid = text("member_cid").map(str::to_owned);
        cfg.expected_cloud = text("cloud")
            .and_then(Cloud::parse)
            .or_else(|| Cloud::of_base_url(&settings.tenant_url));
        cfg.extra_roots_pem.clone_from(&env.extra_roots_pem);
        cfg.request_timeout = env.request_timeout;
        cfg.backoff_base = env.retry_base;
        cfg.backoff_cap = env.retry_cap;
        cfg.max_body_bytes = env.max_body_bytes;
        cfg.refuse_internal_addresses = env.refuse_internal_addresses;
        cfg.on_retry = on_retry;
        let client = Client::new(cfg).map_err(|e| e.failure())?;
        Ok(Arc::new(Falcon { client }))
    }

    fn map(&self, record: Box<RawValue>) -> Result<Incident, dossier_source::mapping::Unmapped> {
        dossier_source::mapping::read(record, crate::mapping::map_fields)
    }

    fn identity(&self) -> dossier_source::RecordIdentity {
        dossier_source::RecordIdentity {
            id: "/composite_id",
            updated: "/updated_timestamp",
        }
    }

    fn remap_stored(&self, raw: &str) -> Option<Incident> {
        crate::mapping::remap_stored(raw)
    }

    /// Every alert carries its own link (`falcon_host_link`, as `Incident::console_url`), whose
    /// form differs by product and cloud: none is built here.
    /// Every customer of a cloud shares its API host: the member CID names the tenant when the
    /// connector reads one (Flight Control), else the API client does (a client belongs to one
    /// CID). Two clients of one CID are not known to overlap, and keep their own records.
    fn tenant_key(&self, tenant_url: &str, config: &Config) -> Option<String> {
        let origin = dossier_source::origin(tenant_url)?;
        let text = |name: &str| {
            config
                .get(name)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_ascii_lowercase)
        };
        match (text("member_cid"), text("client_id")) {
            (Some(cid), _) => Some(format!("{origin} cid {cid}")),
            (None, Some(client)) => Some(format!("{origin} client {client}")),
            (None, None) => None,
        }
    }

    fn console_link(&self, _tenant_url: &str, _record_id: &str) -> Option<String> {
        None
    }

    fn base_url_field(&self) -> &'static str {
        "base_url"
    }

    fn evidence(&self, raw: &str) -> Vec<dossier_source::Evidence> {
        crate::evidence::evidence(raw)
    }
}

/// A connector's link to its Falcon cloud.
struct Falcon {
    client: Client,
}

impl Falcon {
    /// Reads the page a window asks for.
    ///
    /// # Errors
    /// As [`Client::alerts_page`]; a cursor that is not ours is a 400-like refusal, so the
    /// worker restarts the walk from its bound.
    async fn page(&self, window: &Window) -> Result<Page, ClientError> {
        let q = AlertQuery::from_window(window).map_err(|message| ClientError::Rejected {
            status: 400,
            message: Some(message),
        })?;
        let page = self.client.alerts_page(&q).await?;
        Ok(Page {
            records: page.records,
            next_cursor: page.next_cursor,
            unreadable: page.unreadable,
        })
    }
}

#[async_trait]
impl Connection for Falcon {
    async fn fetch(&self, window: &Window) -> Result<Page, Failure> {
        self.page(window).await.map_err(|e| e.failure())
    }

    /// CrowdStrike tells no expiry of an API client's secret (PRODUCERS.md §2.3): unknown.
    async fn credential_expiry(&self) -> Result<Option<DateTime<Utc>>, Failure> {
        Ok(None)
    }

    async fn write_back(&self, record_ids: &[String], verdict: Verdict) -> Result<String, Failure> {
        let tag = cs_verdict_tag(verdict);
        let mut actions = vec![("update_status", "closed")];
        if let Some(tag) = tag {
            actions.push(("add_tag", tag));
        }
        self.client
            .update_alerts(record_ids, &actions)
            .await
            .map_err(|e| e.failure())?;
        Ok(match tag {
            Some(tag) => format!("tag {tag} and status closed"),
            None => "status closed".to_owned(),
        })
    }
}

#[cfg(test)]
mod tenant_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every customer of a cloud shares its host: the member CID, else the API client, tells
    /// tenants apart.
    #[test]
    fn the_tenant_is_the_member_cid_or_the_api_client() {
        let config = |v: serde_json::Value| -> Config { serde_json::from_value(v).unwrap() };
        let cs = CrowdStrike;
        let url = "https://api.us-2.crowdstrike.com";
        let cid = |c: &str, client: &str| {
            cs.tenant_key(
                url,
                &config(serde_json::json!({"member_cid": c, "client_id": client})),
            )
        };
        assert_eq!(
            cid("ABC", "one"),
            cid("abc", "two"),
            "one member CID, any client"
        );
        assert_ne!(cid("abc", "one"), cid("def", "one"));
        let client = |c: &str| cs.tenant_key(url, &config(serde_json::json!({"client_id": c})));
        assert_eq!(client("one"), client("ONE"));
        assert_ne!(
            client("one"),
            client("two"),
            "two clients may be two customers"
        );
        assert_ne!(
            cs.tenant_key(
                "https://api.eu-1.crowdstrike.com",
                &config(serde_json::json!({"client_id": "one"}))
            ),
            client("one"),
            "another cloud is another tenant"
        );
    }
}
