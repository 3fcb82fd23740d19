//! The conformance suite: what every backend must do, written once against [`Store`] alone.
//!
//! A backend's crate implements [`Backend`] (how to get a fresh, empty store) in its tests and
//! instantiates the suite with [`store_conformance_suite!`](crate::store_conformance_suite),
//! which makes one test of each function here:
//!
//! ```text
//! mod conformance {
//!     dossier_store::store_conformance_suite!(crate::SqliteBackend);
//! }
//! ```
//!
//! Tests that need a backend's own machinery (its files, its schema, its migrations) stay in
//! that backend's crate. The test incidents are SentinelOne threats, but no store crate depends
//! on a source: the backend's tests give the mapping ([`Backend::remap`]).

// Test support: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agreement;
mod audit;
mod events;
mod ingest;
mod leases;
mod regressions;
mod stories;
mod tail;
mod triage;

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use dossier_domain::access::Licence;
use dossier_domain::correlate::Policy;
use dossier_domain::vocabulary::{Confidence, DeviceKind, Mitigation, ProducerVerdict};
use dossier_domain::{Device, FileInfo, Incident, Producer};

use crate::{IngestPage, NewConnector, Remap, Store};

pub use agreement::*;
pub use audit::*;
pub use events::*;
pub use ingest::*;
pub use leases::*;
pub use regressions::*;
pub use stories::*;
pub use tail::*;
pub use triage::*;

/// A backend under test: where fresh stores come from.
#[async_trait]
pub trait Backend: Send + Sync {
    type Store: Store;
    /// What keeps a fresh store's resources (a temporary directory, a database to drop) alive
    /// as long as the test holds it.
    type Guard: Send + Sync;

    /// A new, empty store that maps stored incidents with `remap`.
    async fn fresh(&self, remap: Remap) -> (Self::Store, Self::Guard);

    /// SentinelOne's mapping of a stored threat, which the test incidents are made with.
    fn remap(&self) -> Remap;

    /// The producer of that mapping, named [`PRODUCER`]; declaring it lets the suite's
    /// incidents name it. Each test of the suite declares it first.
    fn producer(&self) -> Producer;
}

/// The producer the suite's threats are shaped for ([`as_threat`]): the backend's mapping
/// declares it ([`Backend::producer`]).
pub const PRODUCER: &str = "sentinelone";

/// The producer of the suite's incidents, once the backend has declared it.
pub fn producer() -> Producer {
    Producer::parse(PRODUCER)
        .expect("the backend declares the suite's producer before a test makes incidents")
}

/// Runs a test's future to its end on a runtime of its own, as `#[tokio::test]` does.
pub fn block_on<F: std::future::Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

/// A fresh store with one account and one SentinelOne connector in it.
pub struct Fixture<B: Backend> {
    pub store: B::Store,
    pub account: String,
    pub connector: String,
    /// The connector's generation when the fixture was made: the worker's lease.
    pub generation: i64,
    /// The source's own mapping, which [`Fixture::mapped`] makes the test incidents with,
    /// whatever mapping the store was given.
    pub source: Remap,
    pub guard: B::Guard,
}

impl<B: Backend> Fixture<B> {
    /// A fixture whose store maps stored incidents with the backend's SentinelOne mapping.
    pub async fn new(backend: &B) -> Self {
        Self::with_remap(backend, backend.remap()).await
    }

    /// A fixture whose store maps stored incidents with `remap`.
    pub async fn with_remap(backend: &B, remap: Remap) -> Self {
        assert_eq!(backend.producer().as_str(), PRODUCER);
        let (store, guard) = backend.fresh(remap).await;
        let account = store.create_account("Acme", Licence::Xops).await.unwrap();
        let connector = store
            .create_connector(&NewConnector {
                account_id: account.id.clone(),
                kind: "sentinelone".into(),
                name: "s1".into(),
                description: None,
                tenant_url: "https://example.sentinelone.net".into(),
                config: "{}".into(),
                token_enc: vec![1, 2, 3],
                track_errors: true,
                write_back: false,
                response: false,
                now: Utc::now(),
            })
            .await
            .unwrap();
        Fixture {
            store,
            account: account.id,
            connector: connector.id,
            generation: connector.generation,
            source: backend.remap(),
            guard,
        }
    }

    /// Another connector of the fixture's account.
    pub async fn add_connector(
        &self,
        kind: &str,
        name: &str,
        tenant_url: &str,
    ) -> crate::ConnectorRecord {
        self.store
            .create_connector(&NewConnector {
                account_id: self.account.clone(),
                kind: kind.into(),
                name: name.into(),
                description: None,
                tenant_url: tenant_url.into(),
                config: "{}".into(),
                token_enc: vec![4],
                track_errors: false,
                write_back: false,
                response: false,
                now: t0(),
            })
            .await
            .unwrap()
    }

    /// A story of the fixture's account, in full.
    pub async fn story(&self, id: &str) -> crate::StoryDetail {
        self.store.get_story(Some(&self.account), id).await.unwrap()
    }

    /// Every incident of a story, in story order: the detail's first page, then the pages
    /// after it.
    pub async fn all_incidents(&self, d: &crate::StoryDetail) -> Vec<crate::IncidentView> {
        let mut out = d.incidents.clone();
        let mut cursor = d.incidents_next_cursor.clone();
        while let Some(c) = cursor {
            let page = self
                .store
                .story_incidents(Some(&self.account), &d.story.id, Some(&c), 1000)
                .await
                .unwrap();
            out.extend(page.items);
            cursor = page.next_cursor;
        }
        out
    }

    /// What the threat of `inc` ([`as_threat`]) maps to: `inc` itself, with that raw JSON, but
    /// for what the mapping derives (the file's name is the threat's name, the agent's id as
    /// sent is its UUID, the neutral values are what the vendor's text means). Fails the test
    /// when anything else differs, so no field a test sets is lost.
    pub fn mapped(&self, inc: Incident) -> Incident {
        let raw = as_threat(&inc);
        let mut back = (self.source)(producer(), &raw).expect("the threat maps");
        back.raw = raw;
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

    pub fn page(&self, incidents: Vec<Incident>, now: DateTime<Utc>) -> IngestPage {
        IngestPage {
            account_id: self.account.clone(),
            connector_id: self.connector.clone(),
            incidents: incidents.into_iter().map(|i| self.mapped(i)).collect(),
            checkpoint: "{}".into(),
            now,
            policy: Policy::default(),
            polls: 1,
            generation: self.generation,
            events: Vec::new(),
            status_detail: None,
            shared_with: Vec::new(),
        }
    }

    /// Every story as the list shows it, keyed by its incidents' threat ids, with what differs
    /// between two fixtures (ids derived from the account, the connector) left out.
    pub async fn stories_by_members(&self) -> BTreeMap<String, serde_json::Value> {
        let assignment = self.assignment().await;
        let mut members = BTreeMap::<&str, Vec<&str>>::default();
        for (inc, (story, _)) in &assignment {
            members.entry(story).or_default().push(inc);
        }
        let page = self
            .store
            .list_stories(&crate::StoryQuery {
                account_id: Some(self.account.clone()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut out = BTreeMap::new();
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
    pub async fn events(&self) -> Vec<crate::Event> {
        self.store
            .list_events(&crate::EventQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .items
    }

    /// Every incident's story, by threat id: what "the same stories" means.
    pub async fn assignment(&self) -> BTreeMap<String, (String, u64)> {
        let mut out = BTreeMap::new();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .list_stories(&crate::StoryQuery {
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
                let incidents = self.all_incidents(&d).await;
                assert_eq!(incidents.len() as u64, s.incident_count);
                for i in incidents {
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

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap()
}

pub fn sha1(n: u32) -> String {
    format!("{n:040x}")
}

pub fn incident(id: &str, day: i64, agent: &str, hash: Option<&str>) -> Incident {
    let created = t0() + Duration::days(day);
    Incident {
        producer: producer(),
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
        console_url: None,
        context: dossier_domain::context::Context::default(),
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
            "processUser": inc.context.users.iter()
                .find(|u| u.role == dossier_domain::context::UserRole::Process)
                .map(|u| &u.name),
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
            "agentNetworkStatus": d.network_status,
        },
        "indicators": mitre,
        "mitigationStatus": actions,
    })
    .to_string()
}

/// Makes the conformance suite of a backend: one test per test of [`conformance`](self), each
/// named after it and given a fresh backend from `$backend` (an expression of a type that
/// implements [`Backend`]). Invoke it in a module of its own in the backend's tests.
#[macro_export]
macro_rules! store_conformance_suite {
    ($backend:expr) => {
        $crate::store_conformance_suite!(@async $backend;
            a_page_becomes_stories_and_reingest_changes_nothing,
            an_update_of_a_threat_updates_its_incident_and_story,
            a_version_that_only_moves_its_update_time_changes_no_story,
            a_threat_twice_in_one_page_is_stored_once_as_its_latest_version,
            a_threat_held_by_a_connector_of_the_same_tenant_is_kept_once,
            a_late_earlier_incident_reshapes_windows_and_keeps_the_analysts_work,
            triaged_stories_merged_by_a_sha256_alias_keep_a_verdict_with_its_own_severity,
            closed_stories_reopen_only_after_twelve_hours,
            stories_of_one_account_are_invisible_to_another,
            a_file_spreading_to_other_devices_raises_every_story_of_it,
            a_device_leaving_a_file_lowers_the_outbreak_of_its_other_stories,
            a_file_crossing_into_a_wide_outbreak_raises_every_story_of_it,
            events_carry_what_the_incident_and_the_story_were,
            keyset_paging_visits_every_story_once_in_every_sort,
            paging_back_retraces_the_pages_and_counts_stop_at_their_cap,
            groups_count_their_stories_by_severity_and_status,
            device_names_group_whatever_their_letter_case,
            filters_narrow_the_list,
            severity_needs_a_malicious_verdict_and_actions_reach_the_timeline,
            an_update_to_the_same_values_changes_nothing,
            comments_are_bounded,
            a_hash_filter_finds_stories_by_any_of_their_hashes,
            a_story_keeps_the_hashes_an_earlier_incident_carried,
            a_sha256_finds_the_stories_of_its_file_that_never_saw_it,
            a_story_shows_its_incidents_as_mapped_from_their_stored_threats,
            a_stored_threat_that_no_longer_maps_does_not_stall_its_story,
            stored_incidents_are_read_with_the_mapping_given_for_their_producer,
            stories_relate_across_producers_by_sha256_and_device_name,
            the_outbreak_count_spans_producers_whatever_hash_they_key_the_file_by,
            a_story_is_owned_by_a_user_of_its_account,
            a_users_settings_are_kept_replaced_and_go_with_them,
            a_vendor_id_finds_its_story,
            a_bulk_change_is_all_or_nothing_per_story,
            a_page_of_a_replaced_worker_writes_nothing,
            health_from_a_replaced_worker_is_refused,
            a_pages_events_and_status_reason_are_written_with_it,
            a_page_for_a_deleted_connector_writes_nothing,
            a_connectors_settings_are_kept_and_replaced,
            cursor_survives_a_separator_inside_a_threat_name,
            a_story_whose_incidents_differ_in_mitigation_is_not_called_mitigated,
            a_storys_incidents_page_in_story_order_each_once,
            next_window_follows_its_reshaped_previous_window,
            an_update_changing_the_key_recorrelates_the_old_key,
            a_stale_redelivery_does_not_speak_for_its_story,
            vendor_values_in_any_letter_case_tell_the_same_stories,
            events_page_back_by_their_cursor,
            a_tail_reads_in_commit_order_and_never_skips_a_late_commit,
            a_tail_racing_writers_reads_every_event_once,
            a_tails_filters_narrow_it,
            committing_events_tells_the_waiters,
            audit_lines_filter_by_actor_action_and_story_within_an_account,
        );
        $crate::store_conformance_suite!(@blocking $backend;
            any_order_and_page_split_gives_the_same_stories,
            the_store_tells_the_stories_the_domain_tells,
        );
    };
    (@async $backend:expr; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let backend = $backend;
                $crate::conformance::Backend::producer(&backend);
                $crate::conformance::block_on($crate::conformance::$test(&backend));
            }
        )*
    };
    (@blocking $backend:expr; $($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let backend = $backend;
                $crate::conformance::Backend::producer(&backend);
                $crate::conformance::$test(&backend);
            }
        )*
    };
}
