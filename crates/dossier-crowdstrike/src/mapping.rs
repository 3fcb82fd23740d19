//! Maps one Falcon alert (`resources[i]` of `POST /alerts/entities/alerts/v2`) onto the domain
//! [`Incident`], as PRODUCT.md's "Producers" row for CrowdStrike says.
//!
//! Permissive like the SentinelOne mapper: only a record that is not an endpoint alert, has no
//! `composite_id` or no usable timestamp is an error; every other odd field degrades to `None`
//! (the samples are sanitised inconsistently on purpose, PRODUCERS.md samples README). The raw
//! text is kept as evidence, byte for byte.
//!
//! Nothing here reads a field that CrowdStrike changes without a visible change to the alert
//! (`crawled_timestamp`, `device.last_seen`, `device.modified_timestamp`,
//! `device.agent_local_time`, PRODUCERS.md §2.7): a re-delivery that only bumped
//! `updated_timestamp` maps to the same incident but for `updated_at` and `raw`.

use chrono::{DateTime, Utc};
use dossier_domain::time::parse_lenient;
use dossier_domain::vocabulary::{
    vendor_value, Confidence, DeviceKind, Mitigation, ProducerVerdict, VendorSeverity,
};
use dossier_domain::{Device, FileInfo, Incident, MitreTechnique};
use dossier_source::mapping;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Why a record could not become an incident.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// The text is not a JSON object (or not JSON at all).
    #[error("alert is not a JSON object: {0}")]
    Malformed(String),
    /// The alert is not an endpoint (`product` `epp`) alert: identity, mobile, cloud and other
    /// products have no device of their own and are not polled (the query filters on
    /// `product:'epp'`), so one that arrives anyway is refused rather than half mapped.
    #[error("alert {id} is not an endpoint alert (product {product:?}, expected \"epp\")")]
    NotEndpoint { id: String, product: Option<String> },
    /// No `composite_id`, the alert's global key (PRODUCERS.md §2.4).
    #[error("alert has no `composite_id`")]
    MissingId,
    /// The id is there but refused: surrounding whitespace, or too long (never trimmed, which
    /// would merge two records).
    #[error("alert {0}")]
    BadId(#[from] dossier_source::mapping::BadId),
    /// None of `created_timestamp`, `updated_timestamp`, `timestamp` is a timestamp.
    #[error("alert {id} has no usable timestamp in `created_timestamp`, `updated_timestamp` or `timestamp`")]
    MissingTimestamp { id: String },
}

/// Maps one alert object onto an [`Incident`].
///
/// # Errors
/// [`MapError`] when the text is not an object, not an endpoint alert, has no `composite_id`
/// or no usable timestamp.
pub fn map_alert(raw: &RawValue) -> Result<Incident, MapError> {
    map_owned_alert(raw.to_owned())
}

/// As [`map_alert`], keeping the alert's own text as the incident's raw JSON rather than a
/// copy of it.
///
/// # Errors
/// As [`map_alert`].
pub fn map_owned_alert(raw: Box<RawValue>) -> Result<Incident, MapError> {
    mapping::keep_raw(raw, map_fields)
}

/// Maps a stored alert's raw JSON again, as ingest mapped it, leaving `raw` empty (the store
/// has it). `None` when the text no longer maps.
#[must_use]
pub fn remap_stored(raw: &str) -> Option<Incident> {
    mapping::remap(raw, map_fields)
}

/// The alert's top-level fields the mapping reads; the rest (process trees, IOC context,
/// file writes) is kept in the raw JSON only.
const FIELDS: [&str; 28] = [
    "agent_id",
    "aggregate_id",
    "composite_id",
    "created_timestamp",
    "device",
    "display_name",
    "falcon_host_link",
    "filename",
    "filepath",
    "md5",
    "name",
    "pattern_disposition_details",
    "product",
    "scenario",
    "severity",
    "severity_name",
    "sha1",
    "sha256",
    "source_products",
    "status",
    "tactic",
    "tactic_id",
    "tags",
    "technique",
    "technique_id",
    "timestamp",
    "type",
    "updated_timestamp",
];

/// Everything of an incident but its raw JSON.
pub(crate) fn map_fields(text: &str) -> Result<Incident, MapError> {
    let alert = mapping::parse_fields(text, &FIELDS).map_err(|e| {
        MapError::Malformed(if e.is_data() {
            "expected an object".into()
        } else {
            e.to_string()
        })
    })?;
    let external_id = alert
        .get("composite_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(mapping::record_id)
        .ok_or(MapError::MissingId)??;
    let product = text_of(&alert, "product");
    if !product
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("epp"))
    {
        return Err(MapError::NotEndpoint {
            id: external_id,
            product,
        });
    }
    let created = time_of(&alert, "created_timestamp");
    let updated = time_of(&alert, "updated_timestamp");
    let created_at = created
        .or(updated)
        .or_else(|| time_of(&alert, "timestamp"))
        .ok_or_else(|| MapError::MissingTimestamp {
            id: external_id.clone(),
        })?;
    let updated_at = updated.unwrap_or(created_at);

    let file = file(&alert);
    let (severity, severity_text) = severity(&alert);
    let (mitigation, mitigation_status, mitigation_actions) = mitigation(&alert);
    let (producer_verdict, analyst_verdict) = verdict(&alert);
    let is_fileless = file.sha256.is_none() && file.md5.is_none() && file.sha1.is_none();
    Ok(Incident {
        producer: crate::producer(),
        external_id,
        created_at,
        updated_at,
        device: device(&alert),
        file,
        threat_name: text_of(&alert, "display_name").or_else(|| text_of(&alert, "name")),
        // CrowdStrike's own category of what happened (`NGAV`, `evade_detection`,
        // `credential_theft`); the tactic is in `mitre` already.
        classification: text_of(&alert, "scenario").or_else(|| text_of(&alert, "tactic")),
        // A CrowdStrike alert is judged by its severity, and `confidence_level` is the column
        // that shows a producer's judgement: `30 (Low)` keeps the number and the name.
        confidence_level: severity_text,
        mitigation_status: Some(mitigation_status.to_owned()),
        analyst_verdict,
        confidence: Confidence::Unknown,
        mitigation,
        producer_verdict,
        severity,
        incident_status: text_of(&alert, "status"),
        engines: engines(&alert),
        storyline: text_of(&alert, "aggregate_id"),
        initiated_by: None,
        is_fileless,
        mitre: mitre(&alert),
        mitigation_actions,
        // The link exactly as CrowdStrike gives it: its forms differ by product and over time
        // (PRODUCERS.md §2.4), so it is never built.
        console_url: text_of(&alert, "falcon_host_link"),
        raw: String::new(),
    })
}

/// A string field, trimmed, `None` when absent, empty or not a string.
fn text_of(o: &Map<String, Value>, key: &str) -> Option<String> {
    let s = o.get(key)?.as_str()?.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn time_of(o: &Map<String, Value>, key: &str) -> Option<DateTime<Utc>> {
    o.get(key)?.as_str().and_then(parse_lenient)
}

/// Lowercase hex of exactly `len` characters, else `None`; an all-zero hash (CrowdStrike's
/// `sha1` is `000…0` on every sample, PRODUCERS.md §2.4) is no hash either.
pub(crate) fn hex_hash(s: Option<&str>, len: usize) -> Option<String> {
    mapping::hex_hash(s, len).filter(|h| h.bytes().any(|b| b != b'0'))
}

fn file(alert: &Map<String, Value>) -> FileInfo {
    let hash = |key, len| hex_hash(alert.get(key).and_then(Value::as_str), len);
    FileInfo {
        sha1: hash("sha1", 40),
        sha256: hash("sha256", 64),
        md5: hash("md5", 32),
        name: text_of(alert, "filename"),
        path: text_of(alert, "filepath"),
        size: None,
        signer: None,
        verification: None,
    }
}

/// `device.product_type_desc` (the Hosts API's `Workstation`, `Server`, `Domain Controller`).
const MACHINE: &[(&str, DeviceKind)] = &[
    ("workstation", DeviceKind::Workstation),
    ("server", DeviceKind::Server),
    ("domain controller", DeviceKind::Server),
];

fn device(alert: &Map<String, Value>) -> Device {
    let empty = Map::new();
    let d = alert
        .get("device")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let agent_uuid_raw = text_of(d, "device_id");
    let mut ips: Vec<String> = Vec::new();
    for ip in [text_of(d, "local_ip"), text_of(d, "external_ip")]
        .into_iter()
        .flatten()
    {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    let machine_type = text_of(d, "product_type_desc");
    Device {
        agent_uuid: agent_uuid_raw.as_deref().map(str::to_ascii_lowercase),
        agent_uuid_raw,
        agent_id: text_of(alert, "agent_id"),
        name: text_of(d, "hostname"),
        os_type: text_of(d, "platform_name").or_else(|| text_of(alert, "platform")),
        os_name: text_of(d, "os_version"),
        kind: vendor_value(machine_type.as_deref(), MACHINE).unwrap_or(if machine_type.is_some() {
            DeviceKind::Other
        } else {
            DeviceKind::Unknown
        }),
        machine_type,
        ips,
        site: text_of(d, "site_name"),
        group: None,
        domain: text_of(d, "machine_domain"),
        network_status: None,
    }
}

/// `severity_name` as CrowdStrike spells it, in any letter case.
const SEVERITY: &[(&str, VendorSeverity)] = &[
    ("informational", VendorSeverity::Informational),
    ("low", VendorSeverity::Low),
    ("medium", VendorSeverity::Medium),
    ("high", VendorSeverity::High),
    ("critical", VendorSeverity::Critical),
];

/// The severity band of a 1–100 `severity`, per falcon-mcp's field table (PRODUCERS.md §2.4,
/// [C7]): Informational below 20, Low 20–39, Medium 40–59, High 60–79, Critical from 80.
#[must_use]
pub fn severity_of_number(n: i64) -> VendorSeverity {
    match n {
        i64::MIN..=19 => VendorSeverity::Informational,
        20..=39 => VendorSeverity::Low,
        40..=59 => VendorSeverity::Medium,
        60..=79 => VendorSeverity::High,
        _ => VendorSeverity::Critical,
    }
}

/// The severity a rule reads (`severity_name` when it is a known name, else the number's
/// band) and the text shown for it: `70 (High)`, the name as CrowdStrike spelled it, or the
/// band's name when the alert has only the number (sample 1 has no `severity_name`).
fn severity(alert: &Map<String, Value>) -> (Option<VendorSeverity>, Option<String>) {
    let name = text_of(alert, "severity_name");
    let number = alert.get("severity").and_then(|v| {
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let named = vendor_value(name.as_deref(), SEVERITY);
    let level = named.or_else(|| number.map(severity_of_number));
    let shown_name = name.or_else(|| {
        level.map(|l| {
            let word = l.as_str();
            word[..1].to_ascii_uppercase() + &word[1..]
        })
    });
    let text = match (number, shown_name) {
        (Some(n), Some(name)) => Some(format!("{n} ({name})")),
        (Some(n), None) => Some(n.to_string()),
        (None, name) => name,
    };
    (level, text)
}

/// The `pattern_disposition_details` flags that mean the sensor acted on the threat: killed,
/// quarantined or blocked it (PRODUCERS.md §2.4).
const ACTIONS: &[&str] = &[
    "kill_process",
    "kill_subprocess",
    "kill_parent",
    "quarantine_file",
    "quarantine_machine",
    "process_blocked",
    "operation_blocked",
    "fs_operation_blocked",
    "registry_operation_blocked",
    "handle_operation_downgraded",
];

/// Mitigated when a disposition flag says the sensor killed, quarantined or blocked; else not
/// mitigated. The text is `mitigated`/`not_mitigated`; the actions are the flags that were set
/// (and `kill_action_failed` when a kill failed, which then does not count).
fn mitigation(alert: &Map<String, Value>) -> (Mitigation, &'static str, Vec<String>) {
    let details = alert
        .get("pattern_disposition_details")
        .and_then(Value::as_object);
    let set = |flag: &str| {
        details
            .and_then(|d| d.get(flag))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let kill_failed = set("kill_action_failed");
    let mut actions: Vec<String> = ACTIONS
        .iter()
        .filter(|f| set(f))
        .map(|f| (*f).to_owned())
        .collect();
    let acted = actions
        .iter()
        .any(|a| !(kill_failed && a.starts_with("kill_")));
    if kill_failed {
        actions.push("kill_action_failed".to_owned());
    }
    if acted {
        (Mitigation::Mitigated, "mitigated", actions)
    } else {
        (Mitigation::NotMitigated, "not_mitigated", actions)
    }
}

/// The analyst's verdict from `tags`: Falcon records it as a `true_positive` or
/// `false_positive` tag (the tags Dossier writes back too); the last such tag wins.
fn verdict(alert: &Map<String, Value>) -> (ProducerVerdict, Option<String>) {
    const VERDICT: &[(&str, ProducerVerdict)] = &[
        ("true_positive", ProducerVerdict::TruePositive),
        ("false_positive", ProducerVerdict::FalsePositive),
    ];
    let tags = alert.get("tags").and_then(Value::as_array);
    let found = tags
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .rev()
        .find_map(|t| vendor_value(Some(t), VERDICT).map(|v| (v, t.trim().to_ascii_lowercase())));
    match found {
        Some((v, text)) => (v, Some(text)),
        None => (ProducerVerdict::Undefined, None),
    }
}

/// What detected it: the source products (`FalconInsight`, `Falcon Insight`) and the alert
/// type (`ldt`, `ods`).
fn engines(alert: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let products = alert.get("source_products").and_then(Value::as_array);
    let names = products
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::trim)
        .chain(alert.get("type").and_then(Value::as_str).map(str::trim));
    for name in names.filter(|n| !n.is_empty()) {
        if !out.iter().any(|o| o == name) {
            out.push(name.to_owned());
        }
    }
    out
}

/// Tells whether an id is a MITRE ATT&CK technique id: `T1234` or `T1234.001`.
#[must_use]
pub fn is_mitre_technique(id: &str) -> bool {
    let (main, sub) = id.split_once('.').unwrap_or((id, ""));
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    main.strip_prefix('T').is_some_and(|d| digits(d, 4)) && (sub.is_empty() || digits(sub, 3))
}

/// Tells whether an id is a MITRE ATT&CK tactic id: `TA0006`.
#[must_use]
pub fn is_mitre_tactic(id: &str) -> bool {
    id.strip_prefix("TA")
        .is_some_and(|d| d.len() == 4 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Tells whether an id is one of CrowdStrike's own tactic or technique ids (`CSTA0004`,
/// `CST0007`), which name no MITRE entry.
#[must_use]
pub fn is_crowdstrike_id(id: &str) -> bool {
    id.strip_prefix("CST")
        .map(|d| d.strip_prefix('A').unwrap_or(d))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The alert's one tactic and technique. Ids are kept exactly as given, MITRE's and
/// CrowdStrike's own alike: `CST0000` is never turned into `T0000` (Elastic strips the `CS`,
/// which makes `CSTA0004` "Machine Learning" read as MITRE's TA0004 "Privilege Escalation",
/// PRODUCERS.md §2.4). An id that is neither is dropped. The tactic is its name with its id:
/// `Credential Access (TA0006)`, `Machine Learning (CSTA0004)`.
fn mitre(alert: &Map<String, Value>) -> Vec<MitreTechnique> {
    let Some(id) = text_of(alert, "technique_id") else {
        return Vec::new();
    };
    if !(is_mitre_technique(&id) || is_crowdstrike_id(&id)) {
        return Vec::new();
    }
    let tactic_id =
        text_of(alert, "tactic_id").filter(|t| is_mitre_tactic(t) || is_crowdstrike_id(t));
    let tactic = match (text_of(alert, "tactic"), tactic_id) {
        (Some(name), Some(tid)) => Some(format!("{name} ({tid})")),
        (name, tid) => name.or(tid),
    };
    vec![MitreTechnique {
        id,
        name: text_of(alert, "technique"),
        tactic,
    }]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn hashes_are_lowercase_hex_of_their_length_and_never_all_zero() {
        assert_eq!(
            hex_hash(Some(" ABCDEF0123456789ABCDEF0123456789 "), 32).as_deref(),
            Some("abcdef0123456789abcdef0123456789")
        );
        assert_eq!(hex_hash(Some(&"0".repeat(40)), 40), None);
        assert_eq!(hex_hash(Some(&"0".repeat(64)), 64), None);
        assert_eq!(hex_hash(Some("abc"), 32), None);
        assert_eq!(hex_hash(Some(&"g".repeat(32)), 32), None);
        assert_eq!(hex_hash(None, 32), None);
    }

    #[test]
    fn severity_bands_follow_falcon_mcp() {
        for (n, s) in [
            (1, VendorSeverity::Informational),
            (19, VendorSeverity::Informational),
            (20, VendorSeverity::Low),
            (39, VendorSeverity::Low),
            (40, VendorSeverity::Medium),
            (59, VendorSeverity::Medium),
            (60, VendorSeverity::High),
            (79, VendorSeverity::High),
            (80, VendorSeverity::Critical),
            (100, VendorSeverity::Critical),
        ] {
            assert_eq!(severity_of_number(n), s, "{n}");
        }
    }

    #[test]
    fn mitre_ids_are_told_from_crowdstrike_ids() {
        for id in ["T1110", "T1055.012"] {
            assert!(is_mitre_technique(id) && !is_crowdstrike_id(id), "{id}");
        }
        for id in ["CST0000", "CST0007", "CSTA0004"] {
            assert!(
                is_crowdstrike_id(id) && !is_mitre_technique(id) && !is_mitre_tactic(id),
                "{id}"
            );
        }
        assert!(is_mitre_tactic("TA0006"));
        for id in [
            "T123", "T12345", "T1055.1", "TA006", "CS", "CST", "cst0001", "",
        ] {
            assert!(!is_mitre_technique(id) && !is_crowdstrike_id(id), "{id}");
        }
    }
}

/// Hostile tenant text (issue 27): nothing a tenant writes may hide an alert or grow without
/// bound, and its raw text is kept as sent.
#[cfg(test)]
mod hostile {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use dossier_source::mapping::{BadId, NAME_MAX, PATH_MAX, TRUNCATED};

    fn alert(id: &str, name: &str, path: &str, host: &str) -> String {
        format!(
            r#"{{"composite_id":"{id}","product":"epp","created_timestamp":"2024-05-01T10:00:00Z","display_name":"{name}","filepath":"{path}","sha256":"{}","device":{{"device_id":"d1","hostname":"{host}"}}}}"#,
            "ab".repeat(32)
        )
    }

    fn map(text: &str) -> Result<Incident, MapError> {
        map_owned_alert(RawValue::from_string(text.to_owned()).unwrap())
    }

    #[test]
    fn a_lone_surrogate_in_a_mapped_field_is_read_lossily_and_kept_raw() {
        let text = alert(
            "c:ind:1",
            r"evil\ud800",
            r"\\Device\\x\udc00.exe",
            r"host\ud800",
        );
        let i = map(&text).expect("a lone surrogate must not hide an alert");
        assert_eq!(i.threat_name.as_deref(), Some("evil\u{FFFD}"));
        assert_eq!(i.file.path.as_deref(), Some("\\Device\\x\u{FFFD}.exe"));
        assert_eq!(i.device.name.as_deref(), Some("host\u{FFFD}"));
        assert_eq!(i.raw, text, "the raw text is kept as the tenant sent it");
        assert_eq!(remap_stored(&i.raw).unwrap().threat_name, i.threat_name);
    }

    #[test]
    fn an_id_with_surrounding_whitespace_is_refused_not_merged() {
        assert_eq!(
            map(&alert(r"\tc:ind:1", "n", "p", "h")).err(),
            Some(MapError::BadId(BadId::Padded("\tc:ind:1".into())))
        );
        assert_eq!(
            map(&alert("c:ind:1", "n", "p", "h")).unwrap().external_id,
            "c:ind:1"
        );
    }

    #[test]
    fn long_strings_are_cut_with_a_marker_and_the_raw_is_whole() {
        let long = "x".repeat(50_000);
        let text = alert("c:ind:1", &long, &long, &long);
        let i = map(&text).unwrap();
        let name = i.threat_name.unwrap();
        let path = i.file.path.unwrap();
        assert!(name.len() <= NAME_MAX && name.ends_with(TRUNCATED));
        assert!(path.len() <= PATH_MAX && path.len() > NAME_MAX && path.ends_with(TRUNCATED));
        assert!(i.device.name.unwrap().len() <= NAME_MAX);
        assert_eq!(i.raw, text);
    }
}
