//! The emulated tenants the demo and the benchmarks run: one of each producer this build has,
//! driven alike (start with a history, add live records, update older ones, stop), and the
//! connector that reaches each.

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};

/// A producer's connector kind, as `dossier bench --producer` names it.
pub const KINDS: [&str; 3] = ["sentinelone", "defender", "crowdstrike"];

/// Files and device names several emulated tenants share, so that one file is seen, and one
/// device named, under more than one EDR, as in an estate that runs several.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// (SHA-256, file name).
    pub files: Vec<(String, String)>,
    pub hosts: Vec<String>,
}

impl Shared {
    /// A few files and host names, the same for every run.
    pub fn demo() -> Self {
        Self {
            files: vec![
                (
                    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
                    "invoice_0423.pdf.exe".into(),
                ),
                (
                    "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae".into(),
                    "updater.dll".into(),
                ),
            ],
            hosts: vec!["FIN-LAPTOP-017".into(), "DC-01".into()],
        }
    }
}

/// What a tenant starts with.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub devices: usize,
    /// Records created between `from` and `to`.
    pub records: usize,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub shared: Shared,
}

/// A connector to an emulated tenant: what `dossier_store::NewConnector` needs besides the
/// account and the names.
pub struct Connector {
    pub kind: &'static str,
    pub tenant_url: String,
    /// The kind's own fields, a JSON object.
    pub config: String,
    pub secret: String,
}

/// One running emulated tenant.
pub enum Emulated {
    SentinelOne(dossier_s1sim::RunningSim),
    Defender(dossier_mdesim::RunningSim),
    CrowdStrike(dossier_cssim::RunningSim),
}

const S1_TOKEN: &str = "demo-token-for-the-emulated-tenant";
const CS_CLIENT: &str = "0f3c9a1e5d7b4c2a8e6f1d3b5a7c9e2f";
const CS_SECRET: &str = "demo-secret-of-the-emulated-falcon-api-client";

impl Emulated {
    /// Starts an emulated tenant of a connector kind on loopback, with its history.
    pub async fn start(kind: &str, plan: &Plan) -> anyhow::Result<Self> {
        let listen = "127.0.0.1:0".parse()?;
        Ok(match kind {
            "sentinelone" => {
                let tenant = dossier_s1sim::Tenant::new(&dossier_s1sim::SimConfig::new(
                    plan.seed,
                    plan.devices.max(1),
                    S1_TOKEN,
                ));
                tenant.generate_history(plan.records, plan.from, plan.to);
                Self::SentinelOne(dossier_s1sim::start(tenant, listen).await?)
            }
            "defender" => {
                let mut config = dossier_mdesim::SimConfig::new(plan.seed, plan.devices.max(1));
                config.shared_files.clone_from(&plan.shared.files);
                config.shared_hosts.clone_from(&plan.shared.hosts);
                let tenant = dossier_mdesim::Tenant::new(&config);
                tenant.generate_history(plan.records, plan.from, plan.to);
                Self::Defender(dossier_mdesim::start(tenant, listen).await?)
            }
            "crowdstrike" => {
                let mut config = dossier_cssim::SimConfig::new(
                    plan.seed,
                    plan.devices.max(1),
                    CS_CLIENT,
                    CS_SECRET,
                );
                config.shared_files.clone_from(&plan.shared.files);
                config.shared_hosts.clone_from(&plan.shared.hosts);
                let tenant = dossier_cssim::Tenant::new(&config);
                tenant.generate_history(plan.records, plan.from, plan.to);
                Self::CrowdStrike(dossier_cssim::start(tenant, listen).await?)
            }
            other => anyhow::bail!(
                "no emulated tenant of kind {other:?}; known: {}",
                KINDS.join(", ")
            ),
        })
    }

    /// The vendor, for what the demo prints.
    pub fn vendor(&self) -> &'static str {
        match self {
            Self::SentinelOne(_) => "SentinelOne",
            Self::Defender(_) => "Microsoft Defender",
            Self::CrowdStrike(_) => "CrowdStrike",
        }
    }

    pub fn base_url(&self) -> &str {
        match self {
            Self::SentinelOne(s) => &s.base_url,
            Self::Defender(s) => &s.base_url,
            Self::CrowdStrike(s) => &s.base_url,
        }
    }

    /// The CA the tenant's certificate is signed by, PEM.
    pub fn ca_pem(&self) -> &str {
        match self {
            Self::SentinelOne(s) => &s.ca_pem,
            Self::Defender(s) => &s.ca_pem,
            Self::CrowdStrike(s) => &s.ca_pem,
        }
    }

    /// The connector that reaches this tenant with valid credentials.
    pub fn connector(&self) -> Connector {
        let tenant_url = self.base_url().to_owned();
        match self {
            Self::SentinelOne(_) => Connector {
                kind: "sentinelone",
                tenant_url,
                config: "{}".into(),
                secret: S1_TOKEN.into(),
            },
            // One address plays both Entra ID and Microsoft Graph.
            Self::Defender(s) => Connector {
                kind: "defender",
                config: json!({
                    "tenant_id": s.tenant.tenant_id(),
                    "client_id": dossier_mdesim::AppSpec::DEMO_CLIENT_ID,
                    "login_url": tenant_url,
                })
                .to_string(),
                tenant_url,
                secret: dossier_mdesim::AppSpec::demo_secret().into(),
            },
            Self::CrowdStrike(_) => Connector {
                kind: "crowdstrike",
                config: json!({ "client_id": CS_CLIENT, "base_url": tenant_url }).to_string(),
                tenant_url,
                secret: CS_SECRET.into(),
            },
        }
    }

    /// How many endpoint records the tenant holds: those its connector reads.
    pub fn count(&self) -> usize {
        match self {
            Self::SentinelOne(s) => s.tenant.threat_count(),
            Self::Defender(_) | Self::CrowdStrike(_) => self.ids().len(),
        }
    }

    /// Adds a live record created now, and returns its id as the producer gives it.
    pub fn live(&self, now: DateTime<Utc>) -> String {
        match self {
            Self::SentinelOne(s) => s.tenant.generate_live(now),
            Self::Defender(s) => s.tenant.generate_live(now),
            Self::CrowdStrike(s) => s.tenant.generate_live(now),
        }
    }

    /// Tells whether a record is one its connector reads: the Defender and Falcon tenants also
    /// hold other products' alerts (identity, cloud), which the connector's filter leaves out.
    pub fn is_endpoint(&self, id: &str) -> bool {
        let Some(record) = self.record(id) else {
            return false;
        };
        match self {
            Self::SentinelOne(_) => true,
            Self::Defender(_) => {
                record["serviceSource"].as_str() == Some("microsoftDefenderForEndpoint")
            }
            Self::CrowdStrike(_) => record["product"].as_str() == Some("epp"),
        }
    }

    /// Updates an older record, picked at random, as an analyst in the vendor's console does.
    pub fn update_one(&self, now: DateTime<Utc>) {
        let ids = self.ids();
        if ids.is_empty() {
            return;
        }
        let id = &ids[rand::thread_rng().gen_range(0..ids.len())];
        let _ = match self {
            Self::SentinelOne(s) => s.tenant.update_threat(id, now),
            Self::Defender(s) => s.tenant.update_alert(id, now),
            Self::CrowdStrike(s) => s.tenant.update_alert(id, now),
        };
    }

    /// The ids of the endpoint records (the others are left out by the connector's filter).
    fn ids(&self) -> Vec<String> {
        match self {
            Self::SentinelOne(s) => s.tenant.all_ids(),
            Self::Defender(s) => s.tenant.endpoint_alert_ids(),
            Self::CrowdStrike(s) => s
                .tenant
                .ids_by_update()
                .into_iter()
                .filter(|id| self.is_endpoint(id))
                .collect(),
        }
    }

    /// Every record as the producer serves it, with its id and update time, for the floor.
    pub fn records(&self) -> Vec<(String, String, Value)> {
        let pointer = match self {
            Self::SentinelOne(_) => "/threatInfo/updatedAt",
            Self::Defender(_) => "/lastUpdateDateTime",
            Self::CrowdStrike(_) => "/updated_timestamp",
        };
        self.ids()
            .into_iter()
            .filter_map(|id| {
                let record = self.record(&id)?;
                let updated = record
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                Some((id, updated, record))
            })
            .collect()
    }

    fn record(&self, id: &str) -> Option<Value> {
        match self {
            Self::SentinelOne(s) => s.tenant.threat(id),
            Self::Defender(s) => s.tenant.alert(id),
            Self::CrowdStrike(s) => s.tenant.alert(id),
        }
    }

    /// Stops the tenant and waits until its port is released.
    pub async fn shutdown(self) {
        match self {
            Self::SentinelOne(s) => s.shutdown().await,
            Self::Defender(s) => s.shutdown().await,
            Self::CrowdStrike(s) => s.shutdown().await,
        }
    }
}
