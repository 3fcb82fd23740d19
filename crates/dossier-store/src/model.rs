//! What the store reads and writes. The story, incident and event views serialise to the JSON
//! shapes of the public API v1 (PRODUCT.md, "Public contract").

use chrono::{DateTime, Utc};
use dossier_domain::access::{Licence, Role};
use dossier_domain::correlate::Policy;
use dossier_domain::criticality::Criticality;
use dossier_domain::event::EventType;
use dossier_domain::story::{Severity, Status, Verdict};
use dossier_domain::{Incident, MitreTechnique};
use serde::Serialize;
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub licence: Licence,
    pub created_at: DateTime<Utc>,
}

/// An API key as stored: only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    /// `None` only for operator keys, which span accounts.
    pub account_id: Option<String>,
    pub key_hash: String,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
    /// The name given at creation, shown as the key's actor; `None` for a key without one.
    pub name: Option<String>,
}

/// A connector to create. The token arrives already encrypted.
#[derive(Clone)]
pub struct NewConnector {
    pub account_id: String,
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub tenant_url: String,
    /// The kind's own fields that are not secret, a JSON object (`{}` for none).
    pub config: String,
    pub token_enc: Vec<u8>,
    pub track_errors: bool,
    pub write_back: bool,
    /// Allows response actions (kill, quarantine, disconnect, …) from a story.
    pub response: bool,
    pub now: DateTime<Utc>,
}

/// A connector as stored. Deliberately not `Serialize`: it holds the encrypted token, and the
/// API shows connectors through its own view.
#[derive(Clone)]
pub struct ConnectorRecord {
    pub id: String,
    pub account_id: String,
    pub kind: String,
    pub name: String,
    pub description: Option<String>,
    pub tenant_url: String,
    pub token_enc: Vec<u8>,
    pub status: String,
    pub status_detail: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub track_errors: bool,
    pub write_back: bool,
    /// Allows response actions from a story.
    pub response: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The producer-specific poll position, as JSON; `None` before the first sync.
    pub checkpoint: Option<String>,
    pub polls: u64,
    pub errors: u64,
    pub threats: u64,
    /// Bumped on every configuration change, so a worker notices it must reload.
    pub generation: i64,
    /// Which expiry warning was given for the current token (`Expiry::code`).
    pub expiry_warned: i64,
    /// The kind's own fields that are not secret, a JSON object.
    pub config: String,
}

impl std::fmt::Debug for ConnectorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorRecord")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("name", &self.name)
            .field("tenant_url", &self.tenant_url)
            .field("token_enc", &"<hidden>")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A change to a connector's configuration; `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct ConnectorUpdate {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub tenant_url: Option<String>,
    /// The kind's own fields, a JSON object, when they change.
    pub config: Option<String>,
    pub token_enc: Option<Vec<u8>>,
    pub track_errors: Option<bool>,
    pub write_back: Option<bool>,
    pub response: Option<bool>,
    /// Set with a token or URL change: the connector goes back to `pending`.
    pub status: Option<(String, Option<String>)>,
    /// Forget the poll position (another tenant: its history must be read from the start).
    pub reset_checkpoint: bool,
    pub now: Option<DateTime<Utc>>,
}

/// A change to a connector's health, from its worker.
#[derive(Debug, Clone, Default)]
pub struct HealthUpdate {
    pub status: Option<String>,
    pub status_detail: Option<Option<String>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub token_expires_at: Option<Option<DateTime<Utc>>>,
    pub polls_inc: u64,
    pub errors_inc: u64,
    /// A new checkpoint outside a page commit (e.g. a walk restarted after a rejected cursor).
    pub checkpoint: Option<String>,
    pub expiry_warned: Option<i64>,
    /// The connector's generation the worker was started for: when set, the update is refused
    /// ([`crate::StoreError::LeaseLost`]) once the connector was saved again or deleted, so a
    /// replaced worker cannot overwrite what its successor (or the save) wrote.
    pub generation: Option<i64>,
}

/// One page of threats to commit.
#[derive(Debug, Clone)]
pub struct IngestPage {
    pub account_id: String,
    pub connector_id: String,
    pub incidents: Vec<Incident>,
    /// The checkpoint to store with the page, as JSON.
    pub checkpoint: String,
    pub now: DateTime<Utc>,
    pub policy: Policy,
    /// The successful polls this commit records: 1, or more when polls that read nothing were
    /// not written on their own.
    pub polls: u64,
    /// The connector's generation the worker was started for: the commit is refused
    /// ([`crate::StoreError::LeaseLost`]), and nothing of it written, once the connector was
    /// saved again (a new URL or token restarts its worker) or deleted. A replaced worker's
    /// last page cannot land after its successor started, or after the connector is gone.
    pub generation: i64,
    /// Events recorded with the page, in its transaction: a record the worker could not read
    /// is reported exactly when the checkpoint that remembers it is written.
    pub events: Vec<NewEvent>,
    /// What the connector's status says as the page makes it `connected` (`2 threats could
    /// not be read; see events`); `None` says nothing.
    pub status_detail: Option<String>,
    /// The account's other connectors that reach the same tenant
    /// (`dossier_source::Source::tenant_key`): a record one of them already holds is not
    /// written again. An incident is one record of one tenant, whichever connector read it.
    pub shared_with: Vec<String>,
}

/// What one page commit changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    pub incidents_new: u64,
    pub incidents_updated: u64,
    pub incidents_unchanged: u64,
    pub stories_created: u64,
    pub stories_updated: u64,
    /// Records of the page that another connector of the account, reaching the same tenant,
    /// already holds: kept once, by that connector.
    pub incidents_held_elsewhere: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeviceView {
    pub agent_uuid: Option<String>,
    pub name: Option<String>,
    pub os: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileView {
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub name: Option<String>,
    pub path: Option<String>,
}

/// A story as the list shows it (API v1 story object).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Story {
    pub id: String,
    pub producer: String,
    pub engine_type: String,
    pub vendor: String,
    pub indication: Option<String>,
    pub status: Status,
    pub verdict: Option<Verdict>,
    pub severity: Option<Severity>,
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
    /// The user name of the analyst who owns the story.
    pub assignee: Option<String>,
}

/// One incident of a story, with its raw JSON as evidence.
#[derive(Debug, Clone, Serialize)]
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
    pub raw: Box<RawValue>,
    /// The normalised incident (device, file, MITRE techniques…), for the story page.
    #[serde(skip)]
    pub normalised: Option<Incident>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// `incident_added`, `incident_updated`, `status_changed`, `verdict_changed`,
    /// `severity_changed`, `comment_added`, `comment_deleted`, `reopened`, `story_created`,
    /// `write_back`, `write_back_failed`, `response`, `response_failed`.
    pub kind: String,
    pub actor: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Comment {
    pub id: String,
    pub story_id: String,
    pub author: String,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RelatedStory {
    pub id: String,
    /// `previous_window`, `next_window`, `same_device`, `same_hash`.
    pub relation: String,
    pub indication: Option<String>,
    pub device_name: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub criticality: u8,
    pub status: Status,
    pub verdict: Option<Verdict>,
}

/// How many incidents a story's detail carries: the first page, in story order. The rest are
/// read a page at a time ([`crate::Store::story_incidents`]), so a story of a thousand
/// incidents stays as quick to read and as small to show as one of fifty.
pub const STORY_INCIDENTS_FIRST_PAGE: u32 = 50;

/// A page of a story's incidents, in story order.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentPage {
    /// The story paged (another id may have been asked for, if correlation replaced it).
    pub story_id: String,
    /// The story's account, for a caller that reads across accounts to check it.
    pub account_id: String,
    pub items: Vec<IncidentView>,
    /// The cursor to the next page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// A story with everything behind it.
#[derive(Debug, Clone, Serialize)]
pub struct StoryDetail {
    #[serde(flatten)]
    pub story: Story,
    pub summary: String,
    pub criticality_detail: Criticality,
    /// What an analyst should do now, written from the story's facts
    /// ([`dossier_domain::next_steps`]).
    pub next_steps: Vec<dossier_domain::next_steps::NextStep>,
    /// The device, users, files, processes, storylines and indicators its incidents name,
    /// each with the incidents it comes from ([`dossier_domain::entities`]).
    pub entities: dossier_domain::entities::StoryEntities,
    /// The first page of its incidents ([`STORY_INCIDENTS_FIRST_PAGE`]), in story order.
    pub incidents: Vec<IncidentView>,
    /// The cursor to the incidents after the first page; `None` when they are all there.
    pub incidents_next_cursor: Option<String>,
    /// The latest incident, the one the story is described by, wherever it is among the pages.
    #[serde(skip)]
    pub latest: Option<IncidentView>,
    /// The MITRE ATT&CK techniques any of its incidents names, each once, by id.
    #[serde(skip)]
    pub mitre: Vec<MitreTechnique>,
    /// Everything that happened to it: one entry per incident, and the analysts' actions.
    pub timeline: Vec<TimelineEntry>,
    pub comments: Vec<Comment>,
    pub related: Vec<RelatedStory>,
    pub closed_at: Option<DateTime<Utc>>,
    /// Why the analyst closed the story, if they said.
    pub close_reason: Option<String>,
}

/// Whose stories a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    /// Stories nobody owns.
    Unassigned,
    /// Stories of this user name (any letter case).
    User(String),
}

/// What a bulk change did to one story.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkOutcome {
    /// The story changed (or took the comment).
    Changed,
    /// The story already was as asked, and there was no comment.
    Unchanged,
    /// Nothing of the change was made to this story, for this reason.
    Failed(String),
}

/// A change an analyst makes to a story; `None` leaves a field as it is, `Some(None)` clears it.
/// What it may change is the domain's rule ([`dossier_domain::story::Triage::apply`]).
pub use dossier_domain::story::TriageChange as StoryUpdate;

/// Fields the story list sorts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorySortField {
    Id,
    Indication,
    Criticality,
    Source,
    Producer,
    Status,
    Verdict,
    Severity,
    IncidentCount,
    FirstSignalAt,
    LastSignalAt,
    CreatedAt,
    UpdatedAt,
    Vendor,
    FileHash,
    Mitigation,
}

impl StorySortField {
    pub const ALL: &'static [(&'static str, StorySortField)] = &[
        ("id", StorySortField::Id),
        ("indication", StorySortField::Indication),
        ("criticality", StorySortField::Criticality),
        ("source", StorySortField::Source),
        ("producer", StorySortField::Producer),
        ("status", StorySortField::Status),
        ("verdict", StorySortField::Verdict),
        ("severity", StorySortField::Severity),
        ("incident_count", StorySortField::IncidentCount),
        ("first_signal_at", StorySortField::FirstSignalAt),
        ("last_signal_at", StorySortField::LastSignalAt),
        ("created_at", StorySortField::CreatedAt),
        ("updated_at", StorySortField::UpdatedAt),
        ("vendor", StorySortField::Vendor),
        ("file_hash", StorySortField::FileHash),
        ("mitigation", StorySortField::Mitigation),
    ];

    /// Parses an API sort parameter: a field name, with `-` in front for descending.
    #[must_use]
    pub fn parse_sort(s: &str) -> Option<(StorySortField, bool)> {
        let (name, desc) = match s.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        Self::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| (*f, desc))
    }

    /// Returns the API name of the field.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("updated_at", |(n, _)| n)
    }
}

/// A story list request. `account_id` is `None` only for an operator looking across accounts.
#[derive(Debug, Clone)]
pub struct StoryQuery {
    pub account_id: Option<String>,
    /// Only stories of accounts whose licence covers stories (an operator listing every
    /// account).
    pub licensed_only: bool,
    pub producer: Option<String>,
    pub engine_type: Option<String>,
    pub status: Vec<Status>,
    pub verdict: Vec<Verdict>,
    pub severity: Vec<Severity>,
    pub criticality_min: Option<u8>,
    pub criticality_max: Option<u8>,
    pub device: Option<String>,
    pub hash: Option<String>,
    /// Exact indication (threat name), as the list's group-by links use it.
    pub indication: Option<String>,
    /// Whose stories: a user name, or unassigned ones.
    pub assignee: Option<AssigneeFilter>,
    /// The story holding the incident of this vendor id (a threat or alert id).
    pub incident_id: Option<String>,
    pub q: Option<String>,
    /// Bounds on `updated_at`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only stories created after this time (the list's "new stories" notice).
    pub created_after: Option<DateTime<Utc>>,
    pub sort: StorySortField,
    pub descending: bool,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Default for StoryQuery {
    fn default() -> Self {
        Self {
            account_id: None,
            licensed_only: false,
            producer: None,
            engine_type: None,
            status: Vec::new(),
            verdict: Vec::new(),
            severity: Vec::new(),
            criticality_min: None,
            criticality_max: None,
            device: None,
            hash: None,
            indication: None,
            assignee: None,
            incident_id: None,
            q: None,
            from: None,
            to: None,
            created_after: None,
            sort: StorySortField::UpdatedAt,
            descending: true,
            limit: 50,
            cursor: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StoryPage {
    pub items: Vec<Story>,
    pub next_cursor: Option<String>,
    /// The page before this one; `None` on the first page. Its cursor may be passed as
    /// `cursor` like a next page's.
    #[serde(skip)]
    pub prev_cursor: Option<String>,
}

/// An event (API v1 event object).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub at: DateTime<Utc>,
    pub account_id: String,
    pub connector_id: Option<String>,
    pub story_id: Option<String>,
    pub incident_id: Option<String>,
    pub message: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub account_id: String,
    pub event_type: EventType,
    pub at: DateTime<Utc>,
    pub connector_id: Option<String>,
    pub story_id: Option<String>,
    pub incident_id: Option<String>,
    pub message: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub account_id: Option<String>,
    pub types: Vec<EventType>,
    pub connector_id: Option<String>,
    pub story_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
    /// Newest first (the default): the cursor pages back from the last event shown.
    pub cursor: Option<String>,
    pub order: EventOrder,
    /// `Asc` only: the position to tail from, a `next_cursor` of an earlier ascending page;
    /// `None` tails from the first event.
    pub after: Option<String>,
}

/// The order of an event listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum EventOrder {
    /// Newest first, paged back by `cursor`.
    #[default]
    Desc,
    /// Commit order, from `after` on: a tail. Its page's `next_cursor` is always set (the
    /// `after` given back when nothing came), and no event that commits later is ever placed
    /// before it, so a tail that follows the cursors sees every event once.
    Asc,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventPage {
    pub items: Vec<Event>,
    pub next_cursor: Option<String>,
}

/// A person who signs in to the web UI. `account_id` is `None` only for an operator.
#[derive(Clone)]
pub struct UserRecord {
    pub id: String,
    pub account_id: Option<String>,
    pub username: String,
    /// A PHC string (argon2id); never leaves the server.
    pub password_hash: String,
    pub roles: Vec<Role>,
    pub created_at: DateTime<Utc>,
}

/// A signed-in browser. The cookie itself is never stored, only its SHA-256.
#[derive(Clone)]
pub struct SessionRecord {
    pub id_hash: String,
    pub user_id: String,
    /// The token every state-changing form of this session must carry.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// One line of an account's audit log: who did what, when, to what.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    pub account_id: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    /// The story the line concerns, when its target is one of the account's stories.
    pub story_id: Option<String>,
}

/// Which audit lines to list, newest first. Every filter is exact; all of them apply.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// `None` only for an operator, who reads every account's lines.
    pub account_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub story_id: Option<String>,
    /// The `seq` to page back from.
    pub before: Option<i64>,
    pub limit: u32,
}

/// What the story list can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoryGroup {
    /// The device's name, as the device filter matches it (any letter case).
    Source,
    /// One device: its agent id.
    Device,
    /// One file: its identity (see [`dossier_domain::files`]), whichever hash each producer
    /// keys it by.
    File,
    Indication,
    Status,
    Producer,
}

impl StoryGroup {
    pub const ALL: &'static [(&'static str, StoryGroup)] = &[
        ("file", StoryGroup::File),
        ("device", StoryGroup::Device),
        ("source", StoryGroup::Source),
        ("indication", StoryGroup::Indication),
        ("status", StoryGroup::Status),
        ("producer", StoryGroup::Producer),
    ];

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, g)| *g)
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, g)| *g == self)
            .map_or("source", |(n, _)| n)
    }

    /// What the Workbench calls it.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            StoryGroup::Source => "Device name",
            StoryGroup::Device => "Device",
            StoryGroup::File => "File",
            StoryGroup::Indication => "Indication",
            StoryGroup::Status => "Status",
            StoryGroup::Producer => "Producer",
        }
    }
}

/// One group of the story list: how many stories it holds, the highest criticality among
/// them, and how they split by severity and by status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupCount {
    /// The grouped value; empty when the stories have none (no device name, say).
    pub value: String,
    /// What people read for the value: a device's name for a device, a file's name for a file
    /// (one of them, should the stories name it differently); empty when there is none.
    pub label: String,
    pub count: u64,
    pub max_criticality: u8,
    /// Stories per severity, highest first, then those without one; groups of none left out.
    pub by_severity: Vec<(Option<Severity>, u64)>,
    /// Stories per status, in the workflow's order; statuses without stories left out.
    pub by_status: Vec<(Status, u64)>,
}
