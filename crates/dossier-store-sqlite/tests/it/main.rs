#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agreement;
mod ingest;
mod leases;
mod regressions;
mod stories;

use chrono::{DateTime, Duration, TimeZone, Utc};
use dossier_domain::access::Licence;
use dossier_domain::correlate::Policy;
use dossier_domain::vocabulary::{Confidence, DeviceKind, Mitigation, ProducerVerdict};
use dossier_domain::{Device, FileInfo, Incident, Producer};
use dossier_store::{IngestPage, NewConnector, Store};
use dossier_store_sqlite::SqliteStore;

pub struct Fixture {
    pub store: SqliteStore,
    pub account: String,
    pub connector: String,
    /// The connector's generation when the fixture was made: the worker's lease.
    pub generation: i64,
    _dir: tempfile::TempDir,
}

/// SentinelOne's mapping, the one every test incident here is stored with.
pub fn s1() -> dossier_store::Remap {
    std::sync::Arc::new(|p, raw| match p {
        Producer::SentinelOne => dossier_sentinelone::remap_stored(raw),
    })
}

pub async fn fixture() -> Fixture {
    fixture_with(s1()).await
}

/// A fixture whose store maps stored incidents with `remap`.
pub async fn fixture_with(remap: dossier_store::Remap) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db").to_str().unwrap(), remap).unwrap();
    let account = store.create_account("Acme", Licence::Xops).await.unwrap();
    let connector = store
        .create_connector(&NewConnector {
            account_id: account.id.clone(),
            kind: "sentinelone".into(),
            name: "s1".into(),
            description: None,
            tenant_url: "https://example.sentinelone.net".into(),
            token_enc: vec![1, 2, 3],
            track_errors: true,
            write_back: false,
            now: Utc::now(),
        })
        .await
        .unwrap();
    Fixture {
        store,
        account: account.id,
        connector: connector.id,
        generation: connector.generation,
        _dir: dir,
    }
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

pub fn sha1(n: u32) -> String {
    format!("{n:040x}")
}

pub fn incident(id: &str, day: i64, agent: &str, hash: Option<&str>) -> Incident {
    let created = t0() + Duration::days(day);
    Incident {
        producer: Producer::SentinelOne,
        external_id: id.into(),
        created_at: created,
        updated_at: created,
        device: Device {
            agent_uuid: Some(agent.into()),
            agent_uuid_raw: Some(agent.into()),
            name: Some(format!("host-{agent}")),
            os_name: Some("Windows 11".into()),
            machine_type: Some("desktop".into()),
            kind: DeviceKind::Workstation,
            ..Device::default()
        },
        file: FileInfo {
            sha1: hash.map(Into::into),
            name: Some("evil.exe".into()),
            path: Some("C:\\evil.exe".into()),
            ..FileInfo::default()
        },
        threat_name: Some("evil.exe".into()),
        classification: Some("Trojan".into()),
        confidence_level: Some("malicious".into()),
        mitigation_status: Some("not_mitigated".into()),
        analyst_verdict: Some("undefined".into()),
        confidence: Confidence::Malicious,
        mitigation: Mitigation::NotMitigated,
        producer_verdict: ProducerVerdict::Undefined,
        severity: None,
        incident_status: Some("unresolved".into()),
        engines: vec!["On-Write Static AI".into()],
        storyline: Some(format!("SL-{id}")),
        initiated_by: Some("agent_policy".into()),
        is_fileless: false,
        mitre: Vec::new(),
        mitigation_actions: Vec::new(),
        raw: format!("{{\"id\":\"{id}\"}}"),
    }
}

/// The SentinelOne threat an incident was mapped from: the store maps a stored incident's raw
/// JSON again when it reads it, so a test's incident must be what its raw JSON maps to.
pub fn as_threat(inc: &Incident) -> String {
    use chrono::SecondsFormat::Micros;
    use serde_json::json;
    let d = &inc.device;
    let mitre: Vec<serde_json::Value> = inc
        .mitre
        .iter()
        .map(|m| {
            let technique = match &m.name {
                None => json!({"name": m.id}),
                Some(name) => json!({
                    "name": name,
                    "link": format!("https://attack.mitre.org/techniques/{}/", m.id.replace('.', "/")),
                }),
            };
            json!({"tactics": [{"name": m.tactic, "techniques": [technique]}]})
        })
        .collect();
    let actions: Vec<serde_json::Value> = inc
        .mitigation_actions
        .iter()
        .map(|a| match a.split_once(':') {
            Some((action, status)) => json!({"action": action, "status": status}),
            None => json!({"action": a}),
        })
        .collect();
    json!({
        "id": inc.external_id,
        "threatInfo": {
            "threatName": inc.threat_name,
            "classification": inc.classification,
            "confidenceLevel": inc.confidence_level,
            "mitigationStatus": inc.mitigation_status,
            "analystVerdict": inc.analyst_verdict,
            "incidentStatus": inc.incident_status,
            "createdAt": inc.created_at.to_rfc3339_opts(Micros, true),
            "updatedAt": inc.updated_at.to_rfc3339_opts(Micros, true),
            "storyline": inc.storyline,
            "sha1": inc.file.sha1,
            "sha256": inc.file.sha256,
            "md5": inc.file.md5,
            "filePath": inc.file.path,
            "fileSize": inc.file.size,
            "publisherName": inc.file.signer,
            "fileVerificationType": inc.file.verification,
            "initiatedBy": inc.initiated_by,
            "isFileless": inc.is_fileless,
            "engines": inc.engines,
        },
        "agentRealtimeInfo": {
            "agentUuid": d.agent_uuid.as_ref().or(d.agent_uuid_raw.as_ref()),
            "agentId": d.agent_id,
            "agentComputerName": d.name,
            "agentOsType": d.os_type,
            "agentOsName": d.os_name,
            "agentMachineType": d.machine_type,
            "agentDomain": d.domain,
            "siteName": d.site,
            "groupName": d.group,
            "networkInterfaces": [{"inet": d.ips}],
        },
        "indicators": mitre,
        "mitigationStatus": actions,
    })
    .to_string()
}

/// What the threat of `inc` ([`as_threat`]) maps to: `inc` itself, with that raw JSON, but for
/// what the mapping derives (the file's name is the threat's name, the agent's id as sent is
/// its UUID, the neutral values are what the vendor's text means). Fails the test when anything
/// else differs, so no field a test sets is lost.
pub fn mapped(inc: Incident) -> Incident {
    let raw = serde_json::value::RawValue::from_string(as_threat(&inc)).unwrap();
    let back = dossier_sentinelone::map_owned_threat(raw).unwrap();
    let mut same = Incident {
        raw: back.raw.clone(),
        confidence: back.confidence,
        mitigation: back.mitigation,
        producer_verdict: back.producer_verdict,
        severity: back.severity,
        ..inc
    };
    same.device.kind = back.device.kind;
    same.file.name.clone_from(&back.file.name);
    same.device
        .agent_uuid_raw
        .clone_from(&back.device.agent_uuid_raw);
    assert_eq!(back, same, "the incident is what its threat maps to");
    back
}

impl Fixture {
    /// A story of the fixture's account, in full.
    pub async fn story(&self, id: &str) -> dossier_store::StoryDetail {
        self.store.get_story(Some(&self.account), id).await.unwrap()
    }

    /// The database file.
    pub fn path(&self) -> std::path::PathBuf {
        self._dir.path().join("t.db")
    }

    pub fn page(&self, incidents: Vec<Incident>, now: DateTime<Utc>) -> IngestPage {
        IngestPage {
            account_id: self.account.clone(),
            connector_id: self.connector.clone(),
            incidents: incidents.into_iter().map(mapped).collect(),
            checkpoint: "{}".into(),
            now,
            policy: Policy::default(),
            polls: 1,
            generation: self.generation,
        }
    }

    /// Every story as the list shows it, keyed by its incidents' threat ids, with what differs
    /// between two fixtures (ids derived from the account, the connector) left out.
    pub async fn stories_by_members(
        &self,
    ) -> std::collections::BTreeMap<String, serde_json::Value> {
        let assignment = self.assignment().await;
        let mut members: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for (inc, (story, _)) in &assignment {
            members.entry(story).or_default().push(inc);
        }
        let page = self
            .store
            .list_stories(&dossier_store::StoryQuery {
                account_id: Some(self.account.clone()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut out = std::collections::BTreeMap::new();
        for s in &page.items {
            let mut v = serde_json::to_value(s).unwrap();
            for k in ["id", "account_id", "connector_id"] {
                v.as_object_mut().unwrap().remove(k);
            }
            out.insert(members[s.id.as_str()].join(","), v);
        }
        out
    }

    /// Every event of the database (up to 1,000), newest first.
    pub async fn events(&self) -> Vec<dossier_store::Event> {
        self.store
            .list_events(&dossier_store::EventQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .items
    }

    /// Every incident's story, by threat id: what "the same stories" means.
    pub async fn assignment(&self) -> std::collections::BTreeMap<String, (String, u64)> {
        let mut out = std::collections::BTreeMap::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .list_stories(&dossier_store::StoryQuery {
                    account_id: Some(self.account.clone()),
                    limit: 1000,
                    cursor: cursor.clone(),
                    ..Default::default()
                })
                .await
                .unwrap();
            for s in &page.items {
                let d = self
                    .store
                    .get_story(Some(&self.account), &s.id)
                    .await
                    .unwrap();
                assert_eq!(d.incidents.len() as u64, s.incident_count);
                for i in d.incidents {
                    assert!(out.insert(i.id, (s.id.clone(), s.incident_count)).is_none());
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        out
    }
}
