//! Renders a generated threat into the exact v2.1 object shape (keys sorted like the API's
//! output), straight to JSON text.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::agents::{null_detection, raw_const, Agent};
use crate::catalog::{Engine, ENGINES, MANUAL};
use crate::families::{Family, FILELESS};
use crate::files::FileEntry;
use crate::lifecycle::{describe, Action, Status};
use crate::store::Facets;
use crate::time::{format_micros, format_millis};

/// What was detected.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Source {
    /// A file of the catalogue.
    File(usize),
    /// A fileless/STAR detection (`FILELESS` index).
    Fileless(usize),
}

/// A generated threat before rendering.
#[expect(
    clippy::struct_excessive_bools,
    reason = "each flag is one independent quirk of a generated threat"
)]
pub(crate) struct Draft {
    pub id: u128,
    pub agent: usize,
    pub source: Source,
    pub created: i64,
    pub updated: i64,
    pub storyline: String,
    pub status: Status,
    /// Newest first.
    pub actions: Vec<Action>,
    pub mitigated_preemptively: bool,
    pub with_sha256: bool,
    pub with_md5: bool,
    pub null_detection: bool,
    pub whitening: bool,
}

#[derive(Serialize)]
struct EngineRef<'a> {
    key: &'a str,
    title: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the fields are the API's `threatInfo`, as SentinelOne names and types them"
)]
struct ThreatInfo<'a> {
    analyst_verdict: &'a str,
    analyst_verdict_description: &'a str,
    automatically_resolved: bool,
    browser_type: Option<&'a str>,
    certificate_id: &'a str,
    classification: &'a str,
    classification_source: &'a str,
    cloud_files_hash_verdict: Option<&'a str>,
    collection_id: &'a str,
    confidence_level: &'a str,
    created_at: String,
    detection_engines: [EngineRef<'a>; 1],
    detection_type: &'a str,
    engines: [&'a str; 1],
    external_ticket_exists: bool,
    external_ticket_id: Option<&'a str>,
    failed_actions: bool,
    file_extension: Option<&'a str>,
    file_extension_type: Option<&'a str>,
    file_path: String,
    file_size: u64,
    file_verification_type: &'a str,
    identified_at: String,
    incident_status: &'a str,
    incident_status_description: &'a str,
    initiated_by: &'a str,
    initiated_by_description: &'a str,
    initiating_user_id: Option<&'a str>,
    initiating_username: Option<&'a str>,
    is_fileless: bool,
    is_valid_certificate: bool,
    malicious_process_arguments: Option<&'a str>,
    md5: Option<&'a str>,
    mitigated_preemptively: bool,
    mitigation_status: &'a str,
    mitigation_status_description: &'a str,
    originator_process: Option<&'a str>,
    pending_actions: bool,
    process_user: String,
    publisher_name: &'a str,
    reached_events_limit: bool,
    reboot_required: bool,
    sha1: &'a str,
    sha256: Option<&'a str>,
    storyline: &'a str,
    threat_id: &'a str,
    threat_name: &'a str,
    updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
#[expect(
    clippy::struct_field_names,
    reason = "the fields are the API's threat object, `threatInfo` included"
)]
struct Threat<'a> {
    agent_detection_info: &'a RawValue,
    agent_realtime_info: &'a RawValue,
    container_info: &'a RawValue,
    id: &'a str,
    indicators: &'a RawValue,
    kubernetes_info: &'a RawValue,
    mitigation_status: Vec<serde_json::Value>,
    threat_info: ThreatInfo<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    whitening_options: Option<&'a [&'a str]>,
}

const CONTAINER_INFO: &str =
    r#"{"id":null,"image":null,"isContainerQuarantine":null,"labels":null,"name":null}"#;
const KUBERNETES_INFO: &str = concat!(
    r#"{"cluster":null,"controllerKind":null,"controllerLabels":null,"controllerName":null,"#,
    r#""isContainerQuarantine":null,"namespace":null,"namespaceLabels":null,"node":null,"#,
    r#""pod":null,"podLabels":null}"#,
);

/// Everything `render` needs besides the draft.
pub(crate) struct Context<'a> {
    pub agents: &'a [Agent],
    pub files: &'a [FileEntry],
    pub families: &'a [Family],
    /// Serialised `indicators[]` per family, then per fileless kind.
    pub family_indicators: &'a [Box<RawValue>],
    pub fileless_indicators: &'a [Box<RawValue>],
    pub constants: &'a Constants,
}

/// Constant sub-objects, serialised once.
pub(crate) struct Constants {
    container: Box<RawValue>,
    kubernetes: Box<RawValue>,
    null_detection: Box<RawValue>,
}

impl Default for Constants {
    fn default() -> Self {
        Self {
            container: raw_const(CONTAINER_INFO),
            kubernetes: raw_const(KUBERNETES_INFO),
            null_detection: null_detection(),
        }
    }
}

/// Returns the threat's JSON text and its facets.
pub(crate) fn render(ctx: &Context<'_>, d: &Draft) -> (String, Facets) {
    let agent = &ctx.agents[d.agent];
    let id = d.id.to_string();
    let detection: &RawValue = if d.null_detection {
        &ctx.constants.null_detection
    } else if d.created < agent.upgraded_at {
        &agent.detection_before
    } else {
        &agent.detection
    };
    let shared = Shared {
        id: &id,
        created_at: format_micros(d.created),
        identified_at: format_millis(d.created - 2_000_000),
        updated_at: format_micros(d.updated),
        process_user: match agent.os {
            crate::catalog::Os::Windows => format!("{}\\{}", agent.computer_name, agent.user),
            _ if agent.machine_type == "server" => "root".to_owned(),
            _ => agent.user.clone(),
        },
    };
    let (info, indicators, facets_name) = match d.source {
        Source::File(index) => file_info(ctx, d, index, shared),
        Source::Fileless(kind) => fileless_info(ctx, d, kind, shared),
    };
    let facets = facets(agent, d, &info, facets_name);
    let whitening: &[&str] = match d.source {
        Source::File(_) => &["hash", "path"],
        Source::Fileless(_) => &[],
    };
    let threat = Threat {
        agent_detection_info: detection,
        agent_realtime_info: &agent.realtime,
        container_info: &ctx.constants.container,
        id: &id,
        indicators,
        kubernetes_info: &ctx.constants.kubernetes,
        mitigation_status: d.actions.iter().map(Action::to_json).collect(),
        threat_info: info,
        whitening_options: d.whitening.then_some(whitening),
    };
    // Serialising plain structs and valid raw values cannot fail.
    (serde_json::to_string(&threat).unwrap_or_default(), facets)
}

/// What a file threat's `threatInfo` and a fileless one's have in common, worked out once.
struct Shared<'a> {
    id: &'a str,
    created_at: String,
    identified_at: String,
    updated_at: String,
    process_user: String,
}

/// The `threatInfo` of a threat on a file of the catalogue, with its family's indicators and
/// the name the threat is found by.
fn file_info<'a>(
    ctx: &'a Context<'_>,
    d: &'a Draft,
    index: usize,
    shared: Shared<'a>,
) -> (ThreatInfo<'a>, &'a RawValue, &'a str) {
    let Shared {
        id,
        created_at,
        identified_at,
        updated_at,
        process_user,
    } = shared;
    let agent = &ctx.agents[d.agent];
    let status = &d.status;
    let file = &ctx.files[index];
    let family = &ctx.families[file.family];
    let engine: &Engine = &ENGINES[family.engine];
    let signed = !family.signer.0.is_empty();
    let info = ThreatInfo {
        analyst_verdict: &status.verdict,
        analyst_verdict_description: describe(&status.verdict),
        automatically_resolved: false,
        browser_type: None,
        certificate_id: family.signer.1,
        classification: family.classification,
        classification_source: engine.source,
        cloud_files_hash_verdict: if engine.source == "Cloud" {
            Some("black")
        } else {
            Some("provider_unknown")
        },
        collection_id: &file.collection_id,
        confidence_level: family.confidence,
        created_at,
        detection_engines: [EngineRef {
            key: engine.key,
            title: engine.title,
        }],
        detection_type: engine.detection_type,
        engines: [engine.legacy],
        external_ticket_exists: false,
        external_ticket_id: None,
        failed_actions: false,
        file_extension: family.extension.map(|e| e.0),
        file_extension_type: family.extension.map(|e| e.1),
        file_path: file.path(&agent.user),
        file_size: file.size,
        file_verification_type: if signed {
            "SignedVerified"
        } else {
            "NotSigned"
        },
        identified_at,
        incident_status: &status.incident,
        incident_status_description: describe(&status.incident),
        initiated_by: "agent_policy",
        initiated_by_description: describe("agent_policy"),
        initiating_user_id: None,
        initiating_username: None,
        is_fileless: false,
        is_valid_certificate: signed,
        malicious_process_arguments: None,
        md5: d.with_md5.then_some(file.md5.as_str()),
        mitigated_preemptively: d.mitigated_preemptively,
        mitigation_status: &status.mitigation,
        mitigation_status_description: describe(&status.mitigation),
        originator_process: Some(&file.originator),
        pending_actions: false,
        process_user,
        publisher_name: family.signer.0,
        reached_events_limit: false,
        reboot_required: false,
        sha1: &file.sha1,
        sha256: d.with_sha256.then_some(file.sha256.as_str()),
        storyline: &d.storyline,
        threat_id: id,
        threat_name: &file.name,
        updated_at,
    };
    (
        info,
        &ctx.family_indicators[file.family],
        file.name.as_str(),
    )
}

/// The `threatInfo` of a fileless (STAR) detection, with its kind's indicators and the name
/// the threat is found by.
fn fileless_info<'a>(
    ctx: &'a Context<'_>,
    d: &'a Draft,
    kind: usize,
    shared: Shared<'a>,
) -> (ThreatInfo<'a>, &'a RawValue, &'a str) {
    let Shared {
        id,
        created_at,
        identified_at,
        updated_at,
        process_user,
    } = shared;
    let status = &d.status;
    let (name, classification, _) = FILELESS[kind];
    let engine = &ENGINES[MANUAL];
    let info = ThreatInfo {
        analyst_verdict: &status.verdict,
        analyst_verdict_description: describe(&status.verdict),
        automatically_resolved: false,
        browser_type: None,
        certificate_id: "",
        classification,
        classification_source: engine.source,
        cloud_files_hash_verdict: None,
        collection_id: id,
        confidence_level: "malicious",
        created_at,
        detection_engines: [EngineRef {
            key: engine.key,
            title: engine.title,
        }],
        detection_type: engine.detection_type,
        engines: [engine.legacy],
        external_ticket_exists: false,
        external_ticket_id: None,
        failed_actions: false,
        file_extension: Some(""),
        file_extension_type: Some("None"),
        file_path: String::new(),
        file_size: 0,
        file_verification_type: "NotSigned",
        identified_at,
        incident_status: &status.incident,
        incident_status_description: describe(&status.incident),
        initiated_by: "star_active",
        initiated_by_description: describe("star_active"),
        initiating_user_id: None,
        initiating_username: None,
        is_fileless: true,
        is_valid_certificate: false,
        malicious_process_arguments: Some(""),
        md5: None,
        mitigated_preemptively: false,
        mitigation_status: &status.mitigation,
        mitigation_status_description: describe(&status.mitigation),
        originator_process: None,
        pending_actions: false,
        process_user,
        publisher_name: "",
        reached_events_limit: false,
        reboot_required: false,
        sha1: "",
        sha256: None,
        storyline: &d.storyline,
        threat_id: id,
        threat_name: name,
        updated_at,
    };
    (info, &ctx.fileless_indicators[kind], name)
}

/// What the simulator's queries filter and sort the threat by.
fn facets(agent: &Agent, d: &Draft, info: &ThreatInfo<'_>, threat_name: &str) -> Facets {
    let status = &d.status;
    Facets {
        created: d.created,
        updated: d.updated,
        agent_id: agent.id.clone(),
        site_id: agent.site_id.clone(),
        group_id: agent.group_id.clone(),
        account_id: agent.account_id.clone(),
        os_type: agent.os.os_type().to_owned(),
        machine_type: agent.machine_type.to_owned(),
        agent_version: agent.agent_version.clone(),
        sha1: info.sha1.to_owned(),
        sha256: info.sha256.unwrap_or_default().to_owned(),
        storyline: d.storyline.clone(),
        threat_name: threat_name.to_owned(),
        classification: info.classification.to_owned(),
        confidence: info.confidence_level.to_owned(),
        mitigation: status.mitigation.clone(),
        incident: status.incident.clone(),
        verdict: status.verdict.clone(),
        initiated_by: info.initiated_by.to_owned(),
    }
}
