//! Maps one SentinelOne v2.1 threat object onto the domain [`Incident`].
//!
//! Permissive by design (SENTINELONE.md §6.13): only a missing id or a threat without any
//! usable timestamp is an error; every other odd field degrades to `None`. The raw text is kept
//! as evidence, byte for byte.

use chrono::{DateTime, Utc};
use dossier_domain::time::parse_lenient;
use dossier_domain::vocabulary::{
    vendor_value, Confidence, DeviceKind, Mitigation, ProducerVerdict,
};
use dossier_domain::{Device, FileInfo, Incident, MitreTechnique};
use dossier_source::mapping::{hex_hash, is_technique_id, keep_raw, record_id, BadId};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::lenient::{Obj, Str};
use crate::threat::{DetectionInfo, RawThreat, RealtimeInfo, ThreatInfo};

/// Why a threat object could not become an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The text is not a JSON object (or not JSON at all).
    #[error("threat is not a JSON object: {0}")]
    Malformed(String),
    /// Neither `id` nor `threatInfo.threatId` holds an identifier.
    #[error("threat has no id (neither `id` nor `threatInfo.threatId`)")]
    MissingId,
    /// The id is there but refused: surrounding whitespace, or too long (never trimmed, which
    /// would merge two records).
    #[error("threat {0}")]
    BadId(#[from] dossier_source::mapping::BadId),
    /// None of `threatInfo.createdAt`, `updatedAt`, `identifiedAt` is a timestamp.
    #[error("threat {id} has no usable timestamp in `threatInfo.createdAt`, `updatedAt` or `identifiedAt`")]
    MissingTimestamp { id: String },
}

/// Maps one threat object (`data[i]` of `GET /web/api/v2.1/threats`) onto an [`Incident`].
///
/// # Errors
/// [`MapError`] when the text is not an object, has no id, or has no usable timestamp.
pub fn map_threat(raw: &RawValue) -> Result<Incident, MapError> {
    map_owned_threat(raw.to_owned())
}

/// As [`map_threat`], keeping the threat's own text as the incident's raw JSON rather than a
/// copy of it: a page's threats are kilobytes each.
///
/// # Errors
/// As [`map_threat`].
pub fn map_owned_threat(raw: Box<RawValue>) -> Result<Incident, MapError> {
    keep_raw(raw, map_fields)
}

/// Maps a stored threat's raw JSON again, as ingest mapped it, leaving the incident's `raw`
/// empty (the store has it). `None` when the text no longer maps.
#[must_use]
pub fn remap_stored(raw: &str) -> Option<Incident> {
    dossier_source::mapping::remap(raw, map_fields)
}

/// Everything of an incident but its raw JSON.
pub(crate) fn map_fields(text: &str) -> Result<Incident, MapError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Obj::<RawThreat>::deserialize(&mut de)
        .and_then(|t| de.end().map(|()| t))
        .map_err(|e| MapError::Malformed(e.to_string()))?;
    let threat = parsed
        .0
        .ok_or_else(|| MapError::Malformed("expected an object".into()))?;
    let info = threat.threat_info.0.unwrap_or_default();
    let realtime = threat.agent_realtime_info.0.unwrap_or_default();
    let detection = threat.agent_detection_info.0.unwrap_or_default();

    let external_id = threat
        .id
        .and_then(raw_id)
        .or_else(|| info.threat_id.and_then(raw_id))
        .ok_or(MapError::MissingId)??;

    let created = ts(&info.created_at);
    let updated = ts(&info.updated_at);
    let created_at = created
        .or(updated)
        .or_else(|| ts(&info.identified_at))
        .ok_or_else(|| MapError::MissingTimestamp {
            id: external_id.clone(),
        })?;
    // Kept as received even when earlier than createdAt: real data does that (§6.4).
    let updated_at = updated.unwrap_or(created_at);

    let mitre = mitre_techniques(&threat.indicators.0);
    let mitigation_actions = mitigation_actions(&threat.mitigation_status.0);
    let device = device(realtime, detection);
    let engines = engines(&info);
    let is_fileless = info.is_fileless.0 == Some(true)
        || info
            .initiated_by
            .as_deref()
            .is_some_and(|s| s.starts_with("star_"));

    let ThreatInfo {
        threat_name,
        classification,
        confidence_level,
        mitigation_status,
        analyst_verdict,
        incident_status,
        storyline,
        sha1,
        sha256,
        md5,
        file_path,
        file_size,
        publisher_name,
        file_verification_type,
        initiated_by,
        ..
    } = info;
    let threat_name = threat_name.into_inner();
    let file_path = file_path.into_inner();
    let file = FileInfo {
        sha1: hex_hash(sha1.as_deref(), 40),
        sha256: hex_hash(sha256.as_deref(), 64),
        md5: hex_hash(md5.as_deref(), 32),
        name: threat_name
            .clone()
            .or_else(|| file_path.as_deref().and_then(last_component)),
        path: file_path,
        size: file_size.0,
        signer: publisher_name.into_inner(),
        verification: file_verification_type.into_inner(),
    };

    let confidence_level = confidence_level.into_inner();
    let mitigation_status = mitigation_status.into_inner();
    let analyst_verdict = analyst_verdict.into_inner();
    Ok(Incident {
        producer: crate::producer(),
        external_id,
        created_at,
        updated_at,
        device,
        file,
        threat_name,
        classification: classification.into_inner(),
        confidence: vendor_value(confidence_level.as_deref(), CONFIDENCE).unwrap_or_default(),
        mitigation: vendor_value(mitigation_status.as_deref(), MITIGATION).unwrap_or_default(),
        producer_verdict: vendor_value(analyst_verdict.as_deref(), VERDICT).unwrap_or_default(),
        // A SentinelOne threat carries a confidence, not a severity (SENTINELONE.md §2).
        severity: None,
        confidence_level,
        mitigation_status,
        analyst_verdict,
        incident_status: incident_status.into_inner(),
        engines,
        storyline: storyline.into_inner(),
        initiated_by: initiated_by.into_inner(),
        is_fileless,
        mitre,
        mitigation_actions,
        // The console link is built from the connector's tenant URL (`Source::console_link`):
        // a threat does not carry it.
        console_url: None,
        raw: String::new(),
    })
}

/// `threatInfo.confidenceLevel` (SENTINELONE.md §1.2, `confidenceLevels`), in any letter case.
const CONFIDENCE: &[(&str, Confidence)] = &[
    ("malicious", Confidence::Malicious),
    ("suspicious", Confidence::Suspicious),
    ("n/a", Confidence::NotApplicable),
];

/// `threatInfo.mitigationStatus` (SENTINELONE.md §1.2, `mitigationStatuses`), in any letter
/// case, with a space or an underscore.
const MITIGATION: &[(&str, Mitigation)] = &[
    ("mitigated", Mitigation::Mitigated),
    ("not_mitigated", Mitigation::NotMitigated),
    ("not mitigated", Mitigation::NotMitigated),
    ("marked_as_benign", Mitigation::MarkedBenign),
];

/// `threatInfo.analystVerdict` (SENTINELONE.md §1.2, `analystVerdicts`), in any letter case.
const VERDICT: &[(&str, ProducerVerdict)] = &[
    ("true_positive", ProducerVerdict::TruePositive),
    ("false_positive", ProducerVerdict::FalsePositive),
    ("suspicious", ProducerVerdict::Suspicious),
    ("undefined", ProducerVerdict::Undefined),
];

/// `agentRealtimeInfo.agentMachineType` (SENTINELONE.md §1.2, `agentMachineTypes`), in any
/// letter case.
const MACHINE: &[(&str, DeviceKind)] = &[
    ("desktop", DeviceKind::Workstation),
    ("laptop", DeviceKind::Workstation),
    ("server", DeviceKind::Server),
    ("kubernetes node", DeviceKind::Other),
    ("kubernetes pod", DeviceKind::Other),
    ("ecs task", DeviceKind::Other),
    ("storage", DeviceKind::Other),
];

/// Reads an identifier from its raw JSON: a string as is (trimmed), an integer as its exact
/// digits (never through `u64`: a sample id has 20 digits). Anything else is no id.
fn raw_id(raw: &RawValue) -> Option<Result<String, BadId>> {
    let text = raw.get().trim();
    if text.starts_with('"') {
        let s: String = serde_json::from_str(text).ok()?;
        return (!s.is_empty()).then(|| record_id(&s));
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| record_id(text))
}

fn ts(s: &Str) -> Option<DateTime<Utc>> {
    s.as_deref().and_then(parse_lenient)
}

/// The last component of a Windows or POSIX path; `None` when the path ends in a separator.
fn last_component(path: &str) -> Option<String> {
    let name = path.rsplit(['/', '\\']).next()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

fn device(realtime: RealtimeInfo, detection: DetectionInfo) -> Device {
    // Agent key order from SENTINELONE.md §6.11.
    let agent_uuid_raw = realtime
        .agent_uuid
        .into_inner()
        .or_else(|| detection.agent_uuid.into_inner())
        .or_else(|| realtime.agent_id.0.clone());
    let agent_uuid = agent_uuid_raw.as_deref().map(|s| s.trim().to_lowercase());

    let mut ips: Vec<String> = Vec::new();
    let mut push = |ip: &str| {
        let ip = ip.trim();
        if !ip.is_empty() && !ips.iter().any(|known| known == ip) {
            ips.push(ip.to_owned());
        }
    };
    for nic in realtime
        .network_interfaces
        .0
        .iter()
        .filter_map(|n| n.0.as_ref())
    {
        for ip in nic
            .inet
            .0
            .iter()
            .chain(&nic.inet6.0)
            .filter_map(Str::as_deref)
        {
            push(ip);
        }
    }
    for list in [
        detection.agent_ip_v4.as_deref(),
        detection.agent_ip_v6.as_deref(),
    ] {
        for ip in list.into_iter().flat_map(|l| l.split(',')) {
            push(ip);
        }
    }

    let machine_type = realtime.agent_machine_type.into_inner();
    Device {
        kind: vendor_value(machine_type.as_deref(), MACHINE).unwrap_or_default(),
        machine_type,
        agent_uuid,
        agent_uuid_raw,
        agent_id: realtime.agent_id.into_inner(),
        name: realtime.agent_computer_name.into_inner(),
        os_type: realtime.agent_os_type.into_inner(),
        os_name: realtime
            .agent_os_name
            .into_inner()
            .or_else(|| detection.agent_os_name.into_inner()),
        ips,
        site: realtime
            .site_name
            .into_inner()
            .or_else(|| detection.site_name.into_inner()),
        group: realtime
            .group_name
            .into_inner()
            .or_else(|| detection.group_name.into_inner()),
        domain: realtime
            .agent_domain
            .into_inner()
            .or_else(|| detection.agent_domain.into_inner()),
        network_status: realtime.network_status.into_inner(),
    }
}

fn engines(info: &ThreatInfo<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let titles = info.engines.0.iter().filter_map(Str::as_deref);
    for t in titles {
        if !out.iter().any(|k| k == t) {
            out.push(t.to_owned());
        }
    }
    if out.is_empty() {
        for t in info
            .detection_engines
            .0
            .iter()
            .filter_map(|e| e.0.as_deref())
        {
            if !out.iter().any(|k| k == t) {
                out.push(t.to_owned());
            }
        }
    }
    out
}

fn mitre_techniques(indicators: &[Obj<crate::threat::Indicator>]) -> Vec<MitreTechnique> {
    let mut out: Vec<MitreTechnique> = Vec::new();
    let tactics = indicators
        .iter()
        .filter_map(|i| i.0.as_ref())
        .flat_map(|i| &i.tactics.0);
    for tactic in tactics.filter_map(|t| t.0.as_ref()) {
        for tech in tactic.techniques.0.iter().filter_map(|t| t.0.as_ref()) {
            let name = tech.name.as_deref().map(str::trim);
            let (id, name) = match name.filter(|n| is_technique_id(n)) {
                Some(id) => (id.to_owned(), None),
                None => match tech.link.as_deref().and_then(technique_from_link) {
                    Some(id) => (id, name.filter(|n| !n.is_empty()).map(str::to_owned)),
                    None => continue,
                },
            };
            let tactic = tactic.name.0.clone();
            if !out.iter().any(|m| m.id == id && m.tactic == tactic) {
                out.push(MitreTechnique { id, name, tactic });
            }
        }
    }
    out
}

/// `https://attack.mitre.org/techniques/T1204/002/` → `T1204.002`.
fn technique_from_link(link: &str) -> Option<String> {
    let path = link.split(['?', '#']).next()?;
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let id = parts.by_ref().find(|p| is_technique_id(p))?;
    if id.len() == 5 {
        if let Some(sub) = parts
            .next()
            .filter(|p| p.len() == 3 && p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Some(format!("{id}.{sub}"));
        }
    }
    Some(id.to_owned())
}

fn mitigation_actions(actions: &[Obj<crate::threat::MitigationAction>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in actions.iter().filter_map(|a| a.0.as_ref()) {
        let Some(action) = a.action.as_deref() else {
            continue;
        };
        let entry = match a.status.as_deref() {
            Some(status) => format!("{action}:{status}"),
            None => action.to_owned(),
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn map(json: &str) -> Result<Incident, MapError> {
        let raw = RawValue::from_string(json.to_owned()).unwrap();
        map_threat(&raw)
    }

    fn threat(confidence: &str, mitigation: &str, verdict: &str, machine: &str) -> Incident {
        map(&format!(
            r#"{{"id":"1","threatInfo":{{"createdAt":"2026-01-01T00:00:00Z",
                "confidenceLevel":"{confidence}","mitigationStatus":"{mitigation}",
                "analystVerdict":"{verdict}"}},
                "agentRealtimeInfo":{{"agentMachineType":"{machine}"}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn vendor_values_become_neutral_whatever_their_letter_case() {
        for (c, m, v, k) in [
            ("malicious", "not_mitigated", "false_positive", "server"),
            ("MALICIOUS", "NOT_MITIGATED", "FALSE_POSITIVE", "SERVER"),
            (" Malicious ", "Not_Mitigated", "False_Positive", "Server"),
        ] {
            let inc = threat(c, m, v, k);
            assert_eq!(inc.confidence, Confidence::Malicious, "{c}");
            assert_eq!(inc.mitigation, Mitigation::NotMitigated, "{m}");
            assert_eq!(inc.producer_verdict, ProducerVerdict::FalsePositive, "{v}");
            assert_eq!(inc.device.kind, DeviceKind::Server, "{k}");
            // The vendor's own text stays for display, as sent.
            assert!(inc
                .confidence_level
                .as_deref()
                .is_some_and(|t| t.trim() == c.trim()));
        }
        let inc = threat("n/a", "marked_as_benign", "true_positive", "laptop");
        assert_eq!(
            (
                inc.confidence,
                inc.mitigation,
                inc.producer_verdict,
                inc.device.kind
            ),
            (
                Confidence::NotApplicable,
                Mitigation::MarkedBenign,
                ProducerVerdict::TruePositive,
                DeviceKind::Workstation
            )
        );
        let inc = threat("test", "pending", "whatever", "toaster");
        assert_eq!(
            (
                inc.confidence,
                inc.mitigation,
                inc.producer_verdict,
                inc.device.kind
            ),
            (
                Confidence::Unknown,
                Mitigation::Unknown,
                ProducerVerdict::Undefined,
                DeviceKind::Unknown
            )
        );
        assert_eq!(inc.confidence_level.as_deref(), Some("test"));
        assert_eq!(inc.severity, None);
    }

    #[test]
    fn technique_ids_come_from_name_or_link() {
        assert!(is_technique_id("T1059"));
        assert!(is_technique_id("T1204.002"));
        for bad in ["T7", "123", "T12345", "T1204.02", "t1059", "T1059.0021", ""] {
            assert!(!is_technique_id(bad), "{bad}");
        }
        let l = "https://attack.mitre.org/techniques/T1204/002";
        assert_eq!(technique_from_link(l).as_deref(), Some("T1204.002"));
        let l = "https://attack.mitre.org/techniques/T1059/";
        assert_eq!(technique_from_link(l).as_deref(), Some("T1059"));
        assert_eq!(technique_from_link("https://atta007/"), None);
        assert_eq!(technique_from_link("https://example.com/"), None);
    }

    #[test]
    fn hashes_must_be_hex_of_the_right_length() {
        assert_eq!(hex_hash(Some(&"A".repeat(40)), 40), Some("a".repeat(40)));
        assert_eq!(hex_hash(Some("7c5d6774855fb32785f73ec2095"), 40), None);
        assert_eq!(hex_hash(Some(&"g".repeat(40)), 40), None);
        assert_eq!(hex_hash(Some(""), 40), None);
        assert_eq!(hex_hash(None, 40), None);
    }

    #[test]
    fn paths_yield_their_last_component() {
        assert_eq!(
            last_component(r"C:\Users\x\evil.exe").as_deref(),
            Some("evil.exe")
        );
        assert_eq!(last_component("/tmp/AppRun").as_deref(), Some("AppRun"));
        assert_eq!(last_component("/tmp/"), None);
        assert_eq!(last_component("plain").as_deref(), Some("plain"));
    }

    #[test]
    fn numeric_ids_keep_every_digit() {
        let i =
            map(r#"{"id":55555555555555555555,"threatInfo":{"createdAt":"2021-03-16T14:00:16Z"}}"#)
                .unwrap();
        assert_eq!(i.external_id, "55555555555555555555");
    }

    #[test]
    fn id_falls_back_to_threat_id_and_is_required() {
        let i =
            map(r#"{"id":"","threatInfo":{"threatId":"42","updatedAt":"2021-03-16T14:00:16Z"}}"#)
                .unwrap();
        assert_eq!(i.external_id, "42");
        // Never trimmed (issue 27): " 42 " and "42" are not one threat.
        let padded =
            r#"{"id":"","threatInfo":{"threatId":" 42 ","updatedAt":"2021-03-16T14:00:16Z"}}"#;
        assert!(matches!(map(padded), Err(MapError::BadId(_))));
        assert_eq!(
            i.created_at, i.updated_at,
            "createdAt falls back to updatedAt"
        );
        let e = map(r#"{"id":{"x":1},"threatInfo":{"threatId":1.5}}"#).unwrap_err();
        assert_eq!(e, MapError::MissingId);
    }

    #[test]
    fn a_threat_without_timestamps_is_an_error() {
        let e = map(r#"{"id":"7","threatInfo":{"createdAt":"yesterday"}}"#).unwrap_err();
        assert_eq!(e, MapError::MissingTimestamp { id: "7".into() });
    }

    #[test]
    fn non_objects_are_malformed_not_panics() {
        for junk in ["[]", "1", "\"x\"", "null", "[{\"id\":\"1\"}]"] {
            assert!(matches!(map(junk), Err(MapError::Malformed(_))), "{junk}");
        }
    }

    #[test]
    fn star_threats_are_fileless() {
        let i = map(r#"{"id":"1","threatInfo":{"createdAt":"2021-03-16T14:00:16Z","initiatedBy":"star_manual"}}"#)
            .unwrap();
        assert!(i.is_fileless);
    }

    #[test]
    fn top_level_mitigation_array_is_not_the_status_string() {
        let i = map(
            r#"{"id":"1","mitigationStatus":[{"action":"kill","status":"success"},{"action":"quarantine"}],
                "threatInfo":{"createdAt":"2021-03-16T14:00:16Z","mitigationStatus":"mitigated"}}"#,
        )
        .unwrap();
        assert_eq!(i.mitigation_status.as_deref(), Some("mitigated"));
        assert_eq!(i.mitigation_actions, ["kill:success", "quarantine"]);
    }
}

/// Hostile tenant text (issue 27): nothing a tenant writes may hide a threat or grow without
/// bound, and its raw text is kept as sent.
#[cfg(test)]
mod hostile {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use dossier_source::mapping::{BadId, NAME_MAX, PATH_MAX, TRUNCATED};

    fn threat(id: &str, name: &str, path: &str, computer: &str) -> String {
        format!(
            r#"{{"id":"{id}","threatInfo":{{"createdAt":"2024-05-01T10:00:00Z","threatName":"{name}","filePath":"{path}","sha1":"{}"}},"agentRealtimeInfo":{{"agentUuid":"a1","agentComputerName":"{computer}"}}}}"#,
            "ab".repeat(20)
        )
    }

    fn map(text: &str) -> Result<Incident, MapError> {
        map_owned_threat(RawValue::from_string(text.to_owned()).unwrap())
    }

    #[test]
    fn a_lone_surrogate_in_a_mapped_field_is_read_lossily_and_kept_raw() {
        let text = threat("1", r"evil\ud800", r"C:\\x\udc00.exe", r"host\ud800\ud800");
        let i = map(&text).expect("a lone surrogate must not hide a threat");
        assert_eq!(i.threat_name.as_deref(), Some("evil\u{FFFD}"));
        assert_eq!(i.file.path.as_deref(), Some("C:\\x\u{FFFD}.exe"));
        assert_eq!(i.device.name.as_deref(), Some("host\u{FFFD}\u{FFFD}"));
        assert_eq!(i.raw, text, "the raw text is kept as the tenant sent it");
        let again = remap_stored(&i.raw).expect("the stored text maps again");
        assert_eq!(again.threat_name, i.threat_name);
    }

    #[test]
    fn an_id_with_surrounding_whitespace_is_refused_not_merged() {
        let padded = threat(" 1", "n", "p", "h");
        assert_eq!(
            map(&padded).err(),
            Some(MapError::BadId(BadId::Padded(" 1".into())))
        );
        assert_eq!(map(&threat("1", "n", "p", "h")).unwrap().external_id, "1");
    }

    #[test]
    fn long_strings_are_cut_with_a_marker_and_the_raw_is_whole() {
        let long = "x".repeat(50_000);
        let text = threat("1", &long, &long, &long);
        let i = map(&text).unwrap();
        let name = i.threat_name.unwrap();
        let path = i.file.path.unwrap();
        assert!(name.len() <= NAME_MAX && name.ends_with(TRUNCATED));
        assert!(path.len() <= PATH_MAX && path.len() > NAME_MAX && path.ends_with(TRUNCATED));
        assert!(i.device.name.unwrap().len() <= NAME_MAX);
        assert_eq!(i.raw, text);
    }
}
