//! Maps one Microsoft Graph security alert (`alerts_v2`, PRODUCERS.md §1.3) onto the domain
//! [`Incident`].
//!
//! Permissive by design: only a text that is not a JSON object, an alert without an id, or one
//! without any usable timestamp is an error; every other odd field (a wrong type, a null, an
//! unknown enum member) degrades to `None`. The raw text is kept as evidence, byte for byte.
//!
//! The story key (PRODUCT.md, "Producers"): the device is the `mdeDeviceId` of the first
//! `deviceEvidence`; the file is the sha256, else the sha1, of file evidence (`fileDetails`),
//! else of process evidence (`imageFile`), on that device; without a file the alert's
//! `incidentId` is the no-file term (`storyline`).

use chrono::{DateTime, Utc};
use dossier_domain::time::parse_lenient;
use dossier_domain::vocabulary::{
    vendor_value, DeviceKind, Mitigation, ProducerVerdict, VendorSeverity,
};
use dossier_domain::{Device, FileInfo, Incident, MitreTechnique};
use dossier_source::mapping::{hex_hash, is_technique_id, keep_raw};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why an alert could not become an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The text is not a JSON object (or not JSON at all).
    #[error("alert is not a JSON object: {0}")]
    Malformed(String),
    /// `id` holds no identifier.
    #[error("alert has no id")]
    MissingId,
    /// The id is there but refused: surrounding whitespace, or too long (never trimmed, which
    /// would merge two records).
    #[error("alert {0}")]
    BadId(#[from] dossier_source::mapping::BadId),
    /// Neither `createdDateTime` nor `lastUpdateDateTime` is a timestamp.
    #[error("alert {id} has no usable timestamp in `createdDateTime` or `lastUpdateDateTime`")]
    MissingTimestamp { id: String },
}

/// Maps one alert (`value[i]` of `GET /v1.0/security/alerts_v2`) onto an [`Incident`], keeping
/// the alert's own text as the incident's raw JSON.
///
/// # Errors
/// [`MapError`] when the text is not an object, has no id, or has no usable timestamp.
pub fn map_alert(raw: Box<RawValue>) -> Result<Incident, MapError> {
    keep_raw(raw, map_fields)
}

/// Maps a stored alert's raw JSON again, as ingest mapped it, leaving the incident's `raw`
/// empty (the store has it). `None` when the text no longer maps.
#[must_use]
pub fn remap_stored(raw: &str) -> Option<Incident> {
    dossier_source::mapping::remap(raw, map_fields)
}

/// `severity` (PRODUCERS.md §1.3: `unknown | informational | low | medium | high |
/// unknownFutureValue`; no "critical"), in any letter case: the incidents API spells enums in
/// `PascalCase` (samples README).
const SEVERITY: &[(&str, VendorSeverity)] = &[
    ("informational", VendorSeverity::Informational),
    ("low", VendorSeverity::Low),
    ("medium", VendorSeverity::Medium),
    ("high", VendorSeverity::High),
];

/// `classification` (§1.3). `informationalExpectedActivity` is neither: the activity happened
/// and was expected, which says nothing about a threat, so it stays undefined.
const VERDICT: &[(&str, ProducerVerdict)] = &[
    ("truePositive", ProducerVerdict::TruePositive),
    ("falsePositive", ProducerVerdict::FalsePositive),
];

/// Evidence `remediationStatus` values that say Defender dealt with the threat (the Graph
/// `evidenceRemediationStatus` enum: `none, remediated, prevented, blocked, notFound, …`).
const MITIGATED: &[(&str, Mitigation)] = &[
    ("remediated", Mitigation::Mitigated),
    ("prevented", Mitigation::Mitigated),
    ("blocked", Mitigation::Mitigated),
];

const DEVICE_EVIDENCE: &str = "#microsoft.graph.security.deviceEvidence";
const FILE_EVIDENCE: &str = "#microsoft.graph.security.fileEvidence";
const PROCESS_EVIDENCE: &str = "#microsoft.graph.security.processEvidence";

/// Everything of an incident but its raw JSON.
pub(crate) fn map_fields(json: &str) -> Result<Incident, MapError> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| MapError::Malformed(e.to_string()))?;
    let Value::Object(alert) = value else {
        return Err(MapError::Malformed("expected an object".into()));
    };
    let external_id = id_text(alert.get("id")).ok_or(MapError::MissingId)??;
    // The legacy MDE API names them `alertCreationTime` and `lastUpdateTime` (§1.3).
    let created = time(&alert, "createdDateTime").or_else(|| time(&alert, "alertCreationTime"));
    let updated = time(&alert, "lastUpdateDateTime").or_else(|| time(&alert, "lastUpdateTime"));
    let created_at = created
        .or(updated)
        .ok_or_else(|| MapError::MissingTimestamp {
            id: external_id.clone(),
        })?;
    let updated_at = updated.unwrap_or(created_at);

    let evidence: Vec<&Map<String, Value>> = alert
        .get("evidence")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let device = device(&evidence).unwrap_or_else(|| legacy_device(&alert));
    let file = device
        .agent_uuid
        .as_deref()
        .and_then(|id| file_on(&evidence, id))
        .or_else(|| legacy_file(&evidence))
        .unwrap_or_default();

    let status = text(&alert, "status");
    let severity_text = text(&alert, "severity");
    let classification = text(&alert, "classification");
    let (mitigation, mitigation_status) = mitigation(&evidence, status.as_deref());
    Ok(Incident {
        producer: crate::producer(),
        external_id,
        created_at,
        updated_at,
        device,
        file,
        threat_name: text(&alert, "threatDisplayName")
            .or_else(|| text(&alert, "threatName"))
            .or_else(|| text(&alert, "title")),
        classification: text(&alert, "category"),
        // Defender judges by severity; it states no confidence (PRODUCT.md, "Producers").
        confidence_level: None,
        confidence: dossier_domain::vocabulary::Confidence::Unknown,
        severity: vendor_value(severity_text.as_deref(), SEVERITY),
        mitigation_status,
        mitigation,
        producer_verdict: vendor_value(classification.as_deref(), VERDICT).unwrap_or_default(),
        analyst_verdict: classification,
        incident_status: status,
        engines: text(&alert, "detectionSource").into_iter().collect(),
        // Always the alert's incident: correlation reads it only when there is no file hash.
        storyline: id_text(alert.get("incidentId")).and_then(Result::ok),
        initiated_by: None,
        is_fileless: false,
        mitre: mitre(&alert),
        mitigation_actions: remediations(&evidence),
        // As given, never built: its form changed over time (§1.1, [I11]).
        console_url: text(&alert, "alertWebUrl"),
        raw: String::new(),
    })
}

/// A string field, trimmed; `None` when absent, not a string, blank, or the text `null`
/// (a legacy capture's `"category": "null"`, samples README).
fn text(object: &Map<String, Value>, key: &str) -> Option<String> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "null")
        .map(str::to_owned)
}

/// An identifier: a string as is (trimmed), an integer as its digits (the legacy API's
/// `incidentId` is a number, Graph's a string, §1.3). Anything else is no id.
/// The alert's id as Graph wrote it: `None` when absent or empty, refused when padded.
fn id_text(value: Option<&Value>) -> Option<Result<String, dossier_source::mapping::BadId>> {
    match value? {
        Value::String(s) => (!s.is_empty()).then(|| dossier_source::mapping::record_id(s)),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(Ok(n.to_string())),
        _ => None,
    }
}

fn time(object: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    object
        .get(key)
        .and_then(Value::as_str)
        .and_then(parse_lenient)
}

fn odata_type(evidence: &Map<String, Value>) -> &str {
    evidence
        .get("@odata.type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn is_type(evidence: &Map<String, Value>, wanted: &str) -> bool {
    odata_type(evidence).trim().eq_ignore_ascii_case(wanted)
}

/// The device of a legacy MDE alert: `machineId` is the same id as Graph's `mdeDeviceId`
/// (§0, §1.3).
fn legacy_device(alert: &Map<String, Value>) -> Device {
    let Some(id) = text(alert, "machineId") else {
        return Device::default();
    };
    Device {
        agent_uuid: Some(id.to_lowercase()),
        agent_uuid_raw: Some(id),
        name: text(alert, "computerDnsName"),
        group: text(alert, "rbacGroupName"),
        ..Device::default()
    }
}

/// The file of a legacy alert's flat evidence rows (`entityType` File, then Process), which
/// all belong to its one machine.
fn legacy_file(evidence: &[&Map<String, Value>]) -> Option<FileInfo> {
    let rows: Vec<&Map<String, Value>> = ["File", "Process"]
        .iter()
        .flat_map(|kind| {
            evidence.iter().copied().filter(move |e| {
                text(e, "entityType").is_some_and(|t| t.eq_ignore_ascii_case(kind))
            })
        })
        .collect();
    let chosen = rows
        .iter()
        .find(|d| hash(d, "sha256", 64).is_some())
        .or_else(|| rows.iter().find(|d| hash(d, "sha1", 40).is_some()))?;
    Some(file_info(chosen))
}

/// The device of the first `deviceEvidence` with an `mdeDeviceId`; other devices stay in the
/// raw JSON (an alert can name several, §1.3).
fn device(evidence: &[&Map<String, Value>]) -> Option<Device> {
    let (e, id) = evidence
        .iter()
        .filter(|e| is_type(e, DEVICE_EVIDENCE))
        .find_map(|e| text(e, "mdeDeviceId").map(|id| (*e, id)))?;
    let platform = text(e, "osPlatform");
    let mut ips: Vec<String> = Vec::new();
    for ip in e
        .get("ipInterfaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
    {
        // Loopback addresses are listed on every device and identify none.
        let loopback = ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
        if !ip.is_empty() && !loopback && !ips.iter().any(|known| known == ip) {
            ips.push(ip.to_owned());
        }
    }
    Some(Device {
        agent_uuid: Some(id.to_lowercase()),
        agent_uuid_raw: Some(id),
        agent_id: None,
        name: text(e, "deviceDnsName"),
        os_type: platform.as_deref().map(os_family),
        kind: platform.as_deref().map_or(DeviceKind::Unknown, device_kind),
        os_name: platform,
        machine_type: None,
        ips,
        site: None,
        group: text(e, "rbacGroupName"),
        domain: None,
        network_status: None,
    })
}

/// The OS family of an `osPlatform` (`Windows10`, `WindowsServer2022`, `macOS`, `Linux`, …),
/// lowercase, as the other producers spell it.
fn os_family(platform: &str) -> String {
    let p = platform.to_ascii_lowercase();
    if p.starts_with("windows") {
        "windows".into()
    } else if p.starts_with("mac") {
        "macos".into()
    } else if p.contains("linux") || p.starts_with("ubuntu") || p.starts_with("redhat") {
        "linux".into()
    } else {
        p
    }
}

/// A server when the platform names one (`WindowsServer2019`); a workstation for desktop
/// Windows and macOS; mobiles are another kind; anything else (Linux, say) is unknown.
fn device_kind(platform: &str) -> DeviceKind {
    let p = platform.to_ascii_lowercase();
    if p.contains("server") {
        DeviceKind::Server
    } else if p.starts_with("windows") || p.starts_with("mac") {
        DeviceKind::Workstation
    } else if p.starts_with("ios") || p.starts_with("android") {
        DeviceKind::Other
    } else {
        DeviceKind::Unknown
    }
}

/// The file of the alert on `device`: file evidence before process evidence (a process
/// evidence's image is often the interpreter that ran the threat), the first with a valid
/// sha256, else the first with a valid sha1.
fn file_on(evidence: &[&Map<String, Value>], device: &str) -> Option<FileInfo> {
    let on_device = |e: &&&Map<String, Value>| {
        text(e, "mdeDeviceId").is_some_and(|d| d.eq_ignore_ascii_case(device))
    };
    let details: Vec<&Map<String, Value>> = [
        (FILE_EVIDENCE, "fileDetails"),
        (PROCESS_EVIDENCE, "imageFile"),
    ]
    .iter()
    .flat_map(|(kind, field)| {
        evidence
            .iter()
            .filter(|e| is_type(e, kind))
            .filter(on_device)
            .filter_map(|e| e.get(*field).and_then(Value::as_object))
    })
    .collect();
    let chosen = details
        .iter()
        .find(|d| hash(d, "sha256", 64).is_some())
        .or_else(|| details.iter().find(|d| hash(d, "sha1", 40).is_some()))?;
    Some(file_info(chosen))
}

/// The file of a `fileDetails` (or a legacy evidence row, which has the same names).
fn file_info(chosen: &Map<String, Value>) -> FileInfo {
    let path = text(chosen, "filePath");
    let name = text(chosen, "fileName");
    FileInfo {
        sha1: hash(chosen, "sha1", 40),
        sha256: hash(chosen, "sha256", 64),
        md5: hash(chosen, "md5", 32),
        // Graph splits the folder (`filePath`) from the name (`fileName`).
        path: match (&path, &name) {
            (Some(dir), Some(file)) => Some(join_path(dir, file)),
            _ => path.or_else(|| name.clone()),
        },
        name,
        size: chosen.get("fileSize").and_then(Value::as_u64),
        signer: text(chosen, "signer").or_else(|| text(chosen, "filePublisher")),
        verification: None,
    }
}

/// `C:\Windows\System32` + `cmd.exe` → `C:\Windows\System32\cmd.exe`, with the folder's own
/// separator.
fn join_path(dir: &str, file: &str) -> String {
    let sep = if dir.contains('/') && !dir.contains('\\') {
        '/'
    } else {
        '\\'
    };
    let dir = dir.trim_end_matches(['\\', '/']);
    format!("{dir}{sep}{file}")
}

/// Lowercase hex of exactly `len` characters, else `None` (null, empty, truncated).
fn hash(details: &Map<String, Value>, key: &str, len: usize) -> Option<String> {
    hex_hash(details.get(key).and_then(Value::as_str), len)
}

/// What Defender did about the threat: mitigated when any evidence was remediated, prevented
/// or blocked; otherwise not mitigated while the alert is not resolved, and unknown once it
/// is (resolved without a remediation says nothing either way). The text shown is the
/// deciding `remediationStatus`, else the first one given.
fn mitigation(
    evidence: &[&Map<String, Value>],
    status: Option<&str>,
) -> (Mitigation, Option<String>) {
    let statuses: Vec<String> = evidence
        .iter()
        .filter_map(|e| text(e, "remediationStatus"))
        .collect();
    if let Some(done) = statuses
        .iter()
        .find(|s| vendor_value(Some(s), MITIGATED).is_some())
    {
        return (Mitigation::Mitigated, Some(done.clone()));
    }
    let resolved = status.is_some_and(|s| s.eq_ignore_ascii_case("resolved"));
    let kind = if resolved {
        Mitigation::Unknown
    } else {
        Mitigation::NotMitigated
    };
    (kind, statuses.into_iter().next())
}

/// Each evidence's remediation other than `none`, as `file:prevented`, once each.
fn remediations(evidence: &[&Map<String, Value>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for e in evidence {
        let Some(status) = text(e, "remediationStatus") else {
            continue;
        };
        if status.eq_ignore_ascii_case("none") {
            continue;
        }
        let kind = odata_type(e)
            .rsplit('.')
            .next()
            .unwrap_or_default()
            .trim_end_matches("Evidence");
        let entry = if kind.is_empty() {
            status
        } else {
            format!("{kind}:{status}")
        };
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    out
}

/// `mitreTechniques` (`T1564.001`), valid ids only, once each.
fn mitre(alert: &Map<String, Value>) -> Vec<MitreTechnique> {
    let mut out: Vec<MitreTechnique> = Vec::new();
    for id in alert
        .get("mitreTechniques")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
    {
        if is_technique_id(id) && !out.iter().any(|m| m.id == id) {
            out.push(MitreTechnique {
                id: id.to_owned(),
                name: None,
                tactic: None,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn map(json: &str) -> Result<Incident, MapError> {
        map_alert(RawValue::from_string(json.to_owned()).unwrap())
    }

    fn alert(extra: &str) -> String {
        format!(
            r#"{{"id":"da1","incidentId":"7","createdDateTime":"2024-01-01T00:00:00.1234567Z",
                "lastUpdateDateTime":"2024-01-02T00:00:00.7654321Z"{extra}}}"#
        )
    }

    const DEVICE: &str = r##"{"@odata.type":"#microsoft.graph.security.deviceEvidence",
        "mdeDeviceId":"ABCDEF0123456789ABCDEF0123456789ABCDEF01","deviceDnsName":"srv1",
        "osPlatform":"WindowsServer2019","ipInterfaces":["10.0.0.1","127.0.0.1","::1","10.0.0.1"],
        "remediationStatus":"none"}"##;

    fn file(device: &str, sha256: &str, sha1: &str, status: &str) -> String {
        format!(
            r##"{{"@odata.type":"#microsoft.graph.security.fileEvidence","mdeDeviceId":"{device}",
                "remediationStatus":"{status}",
                "fileDetails":{{"sha256":"{sha256}","sha1":"{sha1}","fileName":"x.exe",
                "filePath":"C:\\temp\\","fileSize":12,"filePublisher":"Pub"}}}}"##
        )
    }

    #[test]
    fn severity_and_verdict_become_neutral_whatever_their_case() {
        for (sev, want) in [
            ("high", Some(VendorSeverity::High)),
            ("Medium", Some(VendorSeverity::Medium)),
            (" LOW ", Some(VendorSeverity::Low)),
            ("informational", Some(VendorSeverity::Informational)),
            ("unknown", None),
            ("unknownFutureValue", None),
        ] {
            let i = map(&alert(&format!(r#","severity":"{sev}""#))).unwrap();
            assert_eq!(i.severity, want, "{sev}");
        }
        for (c, want) in [
            ("truePositive", ProducerVerdict::TruePositive),
            ("FalsePositive", ProducerVerdict::FalsePositive),
            ("informationalExpectedActivity", ProducerVerdict::Undefined),
            ("unknown", ProducerVerdict::Undefined),
        ] {
            let i = map(&alert(&format!(r#","classification":"{c}""#))).unwrap();
            assert_eq!(i.producer_verdict, want, "{c}");
            assert_eq!(i.analyst_verdict.as_deref(), Some(c));
        }
    }

    #[test]
    fn the_file_is_the_one_on_the_first_device() {
        let other = "1111111111111111111111111111111111111111";
        let on_other = file(other, &"a".repeat(64), &"b".repeat(40), "none");
        let on_device = file(
            "abcdef0123456789abcdef0123456789abcdef01",
            &"C".repeat(64),
            "short",
            "none",
        );
        let i = map(&alert(&format!(
            r#","evidence":[{on_other},{DEVICE},{on_device}]"#
        )))
        .unwrap();
        assert_eq!(
            i.device.agent_uuid.as_deref(),
            Some("abcdef0123456789abcdef0123456789abcdef01")
        );
        assert_eq!(i.device.kind, DeviceKind::Server);
        assert_eq!(i.device.os_type.as_deref(), Some("windows"));
        assert_eq!(i.device.ips, ["10.0.0.1"]);
        assert_eq!(i.file.sha256, Some("c".repeat(64)));
        assert_eq!(i.file.sha1, None);
        assert_eq!(i.file.path.as_deref(), Some(r"C:\temp\x.exe"));
        assert_eq!(i.file.signer.as_deref(), Some("Pub"));
        assert_eq!(i.storyline.as_deref(), Some("7"));
    }

    #[test]
    fn a_sha1_serves_when_no_sha256_is_valid() {
        let dev = "abcdef0123456789abcdef0123456789abcdef01";
        let f = file(dev, "null", &"D".repeat(40), "none");
        let i = map(&alert(&format!(r#","evidence":[{DEVICE},{f}]"#))).unwrap();
        assert_eq!((i.file.sha256, i.file.sha1), (None, Some("d".repeat(40))));
    }

    #[test]
    fn without_a_device_there_is_no_file_and_the_incident_is_the_term() {
        let f = file(
            "abcdef0123456789abcdef0123456789abcdef01",
            &"a".repeat(64),
            "",
            "none",
        );
        let i = map(&alert(&format!(r#","incidentId":28282,"evidence":[{f}]"#))).unwrap();
        assert_eq!(i.device.agent_uuid, None);
        assert_eq!(i.file, FileInfo::default());
        assert_eq!(i.storyline.as_deref(), Some("28282"));
        assert!(!i.is_fileless);
    }

    #[test]
    fn remediated_evidence_is_mitigated_else_open_until_resolved() {
        let dev = "abcdef0123456789abcdef0123456789abcdef01";
        let prevented = file(dev, &"a".repeat(64), "", "Prevented");
        let i = map(&alert(&format!(
            r#","status":"new","evidence":[{DEVICE},{prevented}]"#
        )))
        .unwrap();
        assert_eq!(i.mitigation, Mitigation::Mitigated);
        assert_eq!(i.mitigation_status.as_deref(), Some("Prevented"));
        assert_eq!(i.mitigation_actions, ["file:Prevented"]);
        let open = map(&alert(&format!(
            r#","status":"inProgress","evidence":[{DEVICE}]"#
        )))
        .unwrap();
        assert_eq!(open.mitigation, Mitigation::NotMitigated);
        assert_eq!(open.mitigation_status.as_deref(), Some("none"));
        let resolved = map(&alert(r#","status":"resolved""#)).unwrap();
        assert_eq!(resolved.mitigation, Mitigation::Unknown);
    }

    #[test]
    fn ids_and_timestamps_are_required() {
        assert_eq!(
            map(r#"{"id":"","createdDateTime":"2024-01-01T00:00:00Z"}"#).unwrap_err(),
            MapError::MissingId
        );
        assert_eq!(
            map(r#"{"id":"x","createdDateTime":"yesterday"}"#).unwrap_err(),
            MapError::MissingTimestamp { id: "x".into() }
        );
        let i = map(r#"{"id":"x","lastUpdateDateTime":"2024-01-01T00:00:00.1234567Z"}"#).unwrap();
        assert_eq!(i.created_at, i.updated_at);
        for junk in ["[]", "1", "\"x\"", "null", "[{\"id\":\"1\"}]"] {
            assert!(matches!(map(junk), Err(MapError::Malformed(_))), "{junk}");
        }
        assert_eq!(remap_stored("{"), None);
    }

    #[test]
    fn techniques_are_checked_and_deduplicated() {
        let i = map(&alert(
            r#","mitreTechniques":["T1059.001","T1059.001","bogus",7,"T1564"]"#,
        ))
        .unwrap();
        let ids: Vec<&str> = i.mitre.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["T1059.001", "T1564"]);
    }

    #[test]
    fn the_threat_name_falls_back_to_the_title() {
        let i = map(&alert(
            r#","title":"Suspicious thing","threatDisplayName":null"#,
        ))
        .unwrap();
        assert_eq!(i.threat_name.as_deref(), Some("Suspicious thing"));
        let i = map(&alert(r#","title":"T","threatDisplayName":"Wacatac""#)).unwrap();
        assert_eq!(i.threat_name.as_deref(), Some("Wacatac"));
    }
}

/// Hostile tenant text (issue 27): nothing a tenant writes may hide an alert or grow without
/// bound, and its raw text is kept as sent.
#[cfg(test)]
mod hostile {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use dossier_source::mapping::{BadId, NAME_MAX, PATH_MAX, TRUNCATED};

    fn alert(id: &str, title: &str, folder: &str, host: &str) -> String {
        format!(
            r##"{{"id":"{id}","createdDateTime":"2024-05-01T10:00:00Z","title":"{title}","evidence":[{{"@odata.type":"#microsoft.graph.security.deviceEvidence","mdeDeviceId":"d1","deviceDnsName":"{host}"}},{{"@odata.type":"#microsoft.graph.security.fileEvidence","mdeDeviceId":"d1","fileDetails":{{"fileName":"x.exe","filePath":"{folder}","sha256":"{}"}}}}]}}"##,
            "ab".repeat(32)
        )
    }

    fn map(text: &str) -> Result<Incident, MapError> {
        map_alert(RawValue::from_string(text.to_owned()).unwrap())
    }

    #[test]
    fn a_lone_surrogate_in_a_mapped_field_is_read_lossily_and_kept_raw() {
        let text = alert("da1", r"evil\ud800", r"C:\\d\udc00", r"host\ud800");
        let i = map(&text).expect("a lone surrogate must not hide an alert");
        assert_eq!(i.threat_name.as_deref(), Some("evil\u{FFFD}"));
        assert!(i.file.path.as_deref().unwrap().contains("d\u{FFFD}"));
        assert_eq!(i.device.name.as_deref(), Some("host\u{FFFD}"));
        assert_eq!(i.raw, text, "the raw text is kept as the tenant sent it");
        assert_eq!(remap_stored(&i.raw).unwrap().threat_name, i.threat_name);
    }

    #[test]
    fn an_id_with_surrounding_whitespace_is_refused_not_merged() {
        assert_eq!(
            map(&alert("da1 ", "t", "C:", "h")).err(),
            Some(MapError::BadId(BadId::Padded("da1 ".into())))
        );
        assert_eq!(
            map(&alert("da1", "t", "C:", "h")).unwrap().external_id,
            "da1"
        );
    }

    #[test]
    fn long_strings_are_cut_with_a_marker_and_the_raw_is_whole() {
        let long = "x".repeat(50_000);
        let text = alert("da1", &long, &long, &long);
        let i = map(&text).unwrap();
        let name = i.threat_name.unwrap();
        let path = i.file.path.unwrap();
        assert!(name.len() <= NAME_MAX && name.ends_with(TRUNCATED));
        assert!(path.len() <= PATH_MAX && path.len() > NAME_MAX && path.ends_with(TRUNCATED));
        assert!(i.device.name.unwrap().len() <= NAME_MAX);
        assert_eq!(i.raw, text);
    }
}
