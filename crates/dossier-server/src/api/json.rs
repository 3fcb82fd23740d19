//! The JSON the API answers with: the public contract (PRODUCT.md, HTTP API v1), written here
//! beside the handlers, and made from the store's model. A field the store adds reaches the
//! API only when it is added here.

use chrono::{DateTime, Utc};
use dossier_domain::context::UserRole;
use dossier_domain::criticality::Criticality;
use dossier_domain::entities;
use dossier_domain::next_steps::NextStep;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    pub agent_uuid: Option<String>,
    pub name: Option<String>,
    pub os: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FileView {
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub name: Option<String>,
    pub path: Option<String>,
}

/// A story as the list shows it (API v1 story object).
#[derive(Debug, Serialize, ToSchema)]
pub struct Story {
    pub id: String,
    pub producer: String,
    pub engine_type: String,
    pub vendor: String,
    pub indication: Option<String>,
    /// `open`, `pending_analysis`, `pending_more_info`, `monitoring`, `closed`, `reopened`.
    pub status: String,
    /// `suspicious`, `malicious`, `informational`, `benign`, or `null`.
    pub verdict: Option<String>,
    /// `low`, `medium`, `high` (only with the verdict `malicious`), or `null`.
    pub severity: Option<String>,
    pub criticality: u8,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub first_signal_at: DateTime<Utc>,
    pub last_signal_at: DateTime<Utc>,
    pub incident_count: u64,
    pub device: DeviceView,
    pub file: FileView,
    pub mitigation_status: Option<String>,
    pub connector_id: Option<String>,
    pub account_id: String,
    /// The user name of the analyst who owns the story, or `null`.
    pub assignee: Option<String>,
}

/// One incident of a story, with its raw JSON as evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentView {
    /// The producer's threat id, a string.
    pub id: String,
    pub connector_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub threat_name: Option<String>,
    pub classification: Option<String>,
    pub confidence_level: Option<String>,
    pub mitigation_status: Option<String>,
    pub analyst_verdict: Option<String>,
    pub incident_status: Option<String>,
    pub engines: Vec<String>,
    pub mitigation_actions: Vec<String>,
    #[schema(value_type = Object)]
    pub raw: Box<RawValue>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `incident_added`, `incident_updated`, `status_changed`, `verdict_changed`,
    /// `severity_changed`, `comment_added`, `comment_deleted`, `reopened`, `story_created`,
    /// `write_back`, `write_back_failed`, `response` (a response action), `response_failed`.
    pub kind: String,
    pub actor: Option<String>,
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Comment {
    pub id: String,
    pub story_id: String,
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelatedStory {
    pub id: String,
    /// `previous_window`, `next_window`, `same_device`, `same_hash` (the same file, whichever
    /// producer saw it by whichever hash), `same_sha256` (a story filed under no file that
    /// shows the SHA-256), `same_device_name` (the same device name under another producer).
    pub relation: String,
    pub indication: Option<String>,
    pub device_name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub criticality: u8,
    pub status: String,
    pub verdict: Option<String>,
}

/// One recommended next step: what to do, why, and the response action that does it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NextStepView {
    /// What to do, e.g. `Disconnect the device from the network, then remediate`.
    pub text: String,
    /// The fact that calls for it, e.g. `not mitigated on a server`.
    pub reason: String,
    /// The response action (`POST /api/v1/stories/{id}/actions`) that carries it out:
    /// `kill`, `quarantine`, `remediate`, `rollback`, `disconnect`, `reconnect`, `blocklist`,
    /// `mark_true_positive`, `mark_false_positive`; `null` when no action does.
    #[schema(nullable)]
    pub action: Option<String>,
}

impl From<NextStep> for NextStepView {
    fn from(s: NextStep) -> Self {
        Self {
            text: s.text,
            reason: s.reason,
            action: s.action.map(|a| a.as_str().to_owned()),
        }
    }
}

/// Which incidents an entity comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitySources {
    /// How many of the story's incidents name it.
    pub incident_count: u32,
    /// The vendor ids (threat or alert ids) of the first of them, in story order, at most 20.
    pub incident_ids: Vec<String>,
}

impl From<entities::Sources> for EntitySources {
    fn from(s: entities::Sources) -> Self {
        Self {
            incident_count: s.incident_count,
            incident_ids: s.incident_ids,
        }
    }
}

/// The story's device, with every address its incidents gave.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceEntityView {
    pub name: Option<String>,
    pub agent_uuid: Option<String>,
    pub os: Option<String>,
    /// The latest network state a producer gave, as it spells it: `connected`,
    /// `disconnected`, `contained`, `normal`, …
    pub network_status: Option<String>,
    pub ips: Vec<String>,
    #[serde(flatten)]
    pub sources: EntitySources,
}

/// A user the incidents name.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserEntityView {
    pub name: String,
    /// How the user takes part: `process` (the account the process ran as), `logged_in`,
    /// `account` (named otherwise by the producer).
    pub roles: Vec<String>,
    #[serde(flatten)]
    pub sources: EntitySources,
}

/// A file the incidents name, with all its hashes.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileEntityView {
    pub name: Option<String>,
    pub path: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub signer: Option<String>,
    #[serde(flatten)]
    pub sources: EntitySources,
}

/// A process the incidents name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcessEntityView {
    pub name: Option<String>,
    pub command_line: Option<String>,
    /// The parent process, by name (or id).
    pub parent: Option<String>,
    pub user: Option<String>,
    pub path: Option<String>,
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub sources: EntitySources,
}

/// The storyline of fileless incidents, which stands for their file.
#[derive(Debug, Serialize, ToSchema)]
pub struct StorylineEntityView {
    pub id: String,
    #[serde(flatten)]
    pub sources: EntitySources,
}

/// An indicator the producer reported.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndicatorEntityView {
    pub description: Option<String>,
    pub category: Option<String>,
    /// MITRE ATT&CK technique ids (or the producer's own ids, as it gave them).
    pub techniques: Vec<String>,
    #[serde(flatten)]
    pub sources: EntitySources,
}

/// Everything the story's incidents name, each entity once with the incidents it comes from.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntitiesView {
    pub device: Option<DeviceEntityView>,
    pub users: Vec<UserEntityView>,
    pub files: Vec<FileEntityView>,
    pub processes: Vec<ProcessEntityView>,
    pub storylines: Vec<StorylineEntityView>,
    pub indicators: Vec<IndicatorEntityView>,
}

impl From<entities::StoryEntities> for EntitiesView {
    fn from(e: entities::StoryEntities) -> Self {
        Self {
            device: e.device.map(|d| DeviceEntityView {
                name: d.name,
                agent_uuid: d.agent_uuid,
                os: d.os,
                network_status: d.network_status,
                ips: d.ips,
                sources: d.sources.into(),
            }),
            users: e
                .users
                .into_iter()
                .map(|u| UserEntityView {
                    name: u.name,
                    roles: u.roles.iter().map(|r| role_name(*r).to_owned()).collect(),
                    sources: u.sources.into(),
                })
                .collect(),
            files: e
                .files
                .into_iter()
                .map(|f| FileEntityView {
                    name: f.name,
                    path: f.path,
                    sha1: f.sha1,
                    sha256: f.sha256,
                    md5: f.md5,
                    signer: f.signer,
                    sources: f.sources.into(),
                })
                .collect(),
            processes: e
                .processes
                .into_iter()
                .map(|p| ProcessEntityView {
                    name: p.name,
                    command_line: p.command_line,
                    parent: p.parent,
                    user: p.user,
                    path: p.path,
                    sha256: p.sha256,
                    sources: p.sources.into(),
                })
                .collect(),
            storylines: e
                .storylines
                .into_iter()
                .map(|s| StorylineEntityView {
                    id: s.id,
                    sources: s.sources.into(),
                })
                .collect(),
            indicators: e
                .indicators
                .into_iter()
                .map(|i| IndicatorEntityView {
                    description: i.description,
                    category: i.category,
                    techniques: i.techniques,
                    sources: i.sources.into(),
                })
                .collect(),
        }
    }
}

/// The API's name of a user's role.
fn role_name(role: UserRole) -> &'static str {
    match role {
        UserRole::Process => "process",
        UserRole::LoggedIn => "logged_in",
        UserRole::Account => "account",
    }
}

/// A story with everything behind it.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoryDetail {
    #[serde(flatten)]
    pub story: Story,
    pub summary: String,
    #[schema(value_type = Object)]
    pub criticality_detail: Criticality,
    /// What an analyst should do now, most urgent first, written from the story's facts; empty
    /// for a closed story.
    pub next_steps: Vec<NextStepView>,
    /// The device, users, files, processes, storylines (of fileless incidents) and indicators
    /// across all of the story's incidents.
    pub entities: EntitiesView,
    /// The first page of the story's incidents (at most 50), oldest first.
    pub incidents: Vec<IncidentView>,
    /// The cursor to the incidents after the first page
    /// (`GET /api/v1/stories/{id}/incidents?cursor=`); `null` when `incidents` holds them all.
    pub incidents_next_cursor: Option<String>,
    /// Everything that happened to the story, oldest first: one `incident_added` entry per
    /// incident (all of them, not only the first page) and the analysts' actions.
    pub timeline: Vec<TimelineEntry>,
    pub comments: Vec<Comment>,
    pub related: Vec<RelatedStory>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Why the analyst closed the story, if they said.
    pub close_reason: Option<String>,
}

/// A page of a story's incidents, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    pub items: Vec<IncidentView>,
    /// The cursor to the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoryPage {
    pub items: Vec<Story>,
    pub next_cursor: Option<String>,
}

/// An event (API v1 event object).
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub at: DateTime<Utc>,
    pub account_id: String,
    pub connector_id: Option<String>,
    pub story_id: Option<String>,
    pub incident_id: Option<String>,
    pub message: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<Event>,
    pub next_cursor: Option<String>,
}

impl From<dossier_store::Story> for Story {
    fn from(s: dossier_store::Story) -> Self {
        Self {
            id: s.id,
            producer: s.producer,
            engine_type: s.engine_type,
            vendor: s.vendor,
            indication: s.indication,
            status: s.status.as_str().to_owned(),
            verdict: s.verdict.map(|v| v.as_str().to_owned()),
            severity: s.severity.map(|v| v.as_str().to_owned()),
            criticality: s.criticality,
            created_at: s.created_at,
            updated_at: s.updated_at,
            first_signal_at: s.first_signal_at,
            last_signal_at: s.last_signal_at,
            incident_count: s.incident_count,
            device: DeviceView {
                agent_uuid: s.device.agent_uuid,
                name: s.device.name,
                os: s.device.os,
            },
            file: FileView {
                sha1: s.file.sha1,
                sha256: s.file.sha256,
                md5: s.file.md5,
                name: s.file.name,
                path: s.file.path,
            },
            mitigation_status: s.mitigation_status,
            assignee: s.assignee,
            connector_id: s.connector_id,
            account_id: s.account_id,
        }
    }
}

impl From<dossier_store::IncidentView> for IncidentView {
    fn from(i: dossier_store::IncidentView) -> Self {
        Self {
            id: i.id,
            connector_id: i.connector_id,
            created_at: i.created_at,
            updated_at: i.updated_at,
            threat_name: i.threat_name,
            classification: i.classification,
            confidence_level: i.confidence_level,
            mitigation_status: i.mitigation_status,
            analyst_verdict: i.analyst_verdict,
            incident_status: i.incident_status,
            engines: i.engines,
            mitigation_actions: i.mitigation_actions,
            raw: decodable(i.raw),
        }
    }
}

/// The raw JSON as every JSON parser reads it: a lone surrogate escape the tenant sent (kept
/// so in the store and on the Workbench's raw view) is `\uFFFD` here, since strict parsers
/// (`serde_json` among them) refuse the whole response otherwise.
fn decodable(raw: Box<RawValue>) -> Box<RawValue> {
    match dossier_source::mapping::lossy_surrogates(raw.get()) {
        std::borrow::Cow::Borrowed(_) => raw,
        std::borrow::Cow::Owned(text) => RawValue::from_string(text).unwrap_or(raw),
    }
}

impl From<dossier_store::TimelineEntry> for TimelineEntry {
    fn from(t: dossier_store::TimelineEntry) -> Self {
        Self {
            at: t.at,
            kind: t.kind,
            actor: t.actor,
            text: t.text,
        }
    }
}

impl From<dossier_store::Comment> for Comment {
    fn from(c: dossier_store::Comment) -> Self {
        Self {
            id: c.id,
            story_id: c.story_id,
            author: c.author,
            text: c.text,
            created_at: c.created_at,
        }
    }
}

impl From<dossier_store::RelatedStory> for RelatedStory {
    fn from(r: dossier_store::RelatedStory) -> Self {
        Self {
            id: r.id,
            relation: r.relation,
            indication: r.indication,
            device_name: r.device_name,
            updated_at: r.updated_at,
            criticality: r.criticality,
            status: r.status.as_str().to_owned(),
            verdict: r.verdict.map(|v| v.as_str().to_owned()),
        }
    }
}

impl From<dossier_store::StoryDetail> for StoryDetail {
    fn from(d: dossier_store::StoryDetail) -> Self {
        Self {
            story: d.story.into(),
            summary: d.summary,
            criticality_detail: d.criticality_detail,
            next_steps: d.next_steps.into_iter().map(Into::into).collect(),
            entities: d.entities.into(),
            incidents: d.incidents.into_iter().map(Into::into).collect(),
            incidents_next_cursor: d.incidents_next_cursor,
            timeline: d.timeline.into_iter().map(Into::into).collect(),
            comments: d.comments.into_iter().map(Into::into).collect(),
            related: d.related.into_iter().map(Into::into).collect(),
            closed_at: d.closed_at,
            close_reason: d.close_reason,
        }
    }
}

impl From<dossier_store::IncidentPage> for IncidentPage {
    fn from(p: dossier_store::IncidentPage) -> Self {
        Self {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

impl From<dossier_store::StoryPage> for StoryPage {
    fn from(p: dossier_store::StoryPage) -> Self {
        Self {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

impl From<dossier_store::Event> for Event {
    fn from(e: dossier_store::Event) -> Self {
        Self {
            id: e.id,
            event_type: e.event_type.as_str().to_owned(),
            at: e.at,
            account_id: e.account_id,
            connector_id: e.connector_id,
            story_id: e.story_id,
            incident_id: e.incident_id,
            message: e.message,
            data: e.data,
        }
    }
}

impl From<dossier_store::EventPage> for EventPage {
    fn from(p: dossier_store::EventPage) -> Self {
        Self {
            items: p.items.into_iter().map(Into::into).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The API's story is the store's, field for field: serialising either gives the same JSON
    /// (the model keeps `Serialize` for the store's own tests), so the contract did not move
    /// when its types moved here.
    #[test]
    fn the_api_story_is_the_stores_field_for_field() {
        use dossier_domain::story::{Severity, Status, Verdict};
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = dossier_store::Story {
            id: "s1".into(),
            producer: "sentinelone".into(),
            engine_type: "endpoint".into(),
            vendor: "SentinelOne".into(),
            indication: Some("evil.exe".into()),
            status: Status::PendingMoreInfo,
            verdict: Some(Verdict::Malicious),
            severity: Some(Severity::High),
            criticality: 9,
            created_at: t,
            updated_at: t,
            first_signal_at: t,
            last_signal_at: t,
            incident_count: 3,
            device: dossier_store::DeviceView {
                agent_uuid: Some("ag".into()),
                name: Some("host".into()),
                os: None,
            },
            file: dossier_store::FileView {
                sha1: Some("a".repeat(40)),
                sha256: None,
                md5: None,
                name: Some("evil.exe".into()),
                path: Some("C:\\evil.exe".into()),
            },
            mitigation_status: Some("not_mitigated".into()),
            connector_id: Some("c1".into()),
            account_id: "a1".into(),
            assignee: Some("ana".into()),
        };
        let store_json = serde_json::to_value(&s).unwrap();
        assert_eq!(serde_json::to_value(Story::from(s)).unwrap(), store_json);
        let e = dossier_store::Event {
            id: "7".into(),
            event_type: dossier_domain::event::EventType::StoryCreated,
            at: t,
            account_id: "a1".into(),
            connector_id: None,
            story_id: Some("s1".into()),
            incident_id: None,
            message: "m".into(),
            data: serde_json::json!({"k": 1}),
        };
        let store_json = serde_json::to_value(&e).unwrap();
        assert_eq!(serde_json::to_value(Event::from(e)).unwrap(), store_json);
    }
}
