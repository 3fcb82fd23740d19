//! The normalised incident: one threat from one producer, with its raw JSON kept as evidence.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::producer::Producer;
use crate::vocabulary::{Confidence, DeviceKind, Mitigation, ProducerVerdict, VendorSeverity};

/// The device an incident happened on, as the producer saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Agent UUID, lowercase (the correlation key). `None` when the producer gave none.
    pub agent_uuid: Option<String>,
    /// The agent UUID exactly as received, before case folding.
    pub agent_uuid_raw: Option<String>,
    /// Producer's internal agent id (a decimal string for SentinelOne).
    pub agent_id: Option<String>,
    pub name: Option<String>,
    /// `windows`, `macos`, `linux`, … as the producer spells it.
    pub os_type: Option<String>,
    pub os_name: Option<String>,
    /// `desktop`, `laptop`, `server`, … as the producer spells it.
    pub machine_type: Option<String>,
    /// What the machine type means, whoever the producer (rules read this, never the text).
    #[serde(default)]
    pub kind: DeviceKind,
    pub ips: Vec<String>,
    pub site: Option<String>,
    pub group: Option<String>,
    pub domain: Option<String>,
    /// Whether the device is on the network as the producer last said: `connected`,
    /// `disconnected` (cut off by a response action), … as the producer spells it.
    #[serde(default)]
    pub network_status: Option<String>,
}

/// The file behind an incident. Hashes are lowercase hex of the right length, or `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub name: Option<String>,
    pub path: Option<String>,
    pub size: Option<u64>,
    /// Publisher / signer identity.
    pub signer: Option<String>,
    /// `NotSigned`, `SignedVerified`, … as the producer spells it.
    pub verification: Option<String>,
}

/// A MITRE ATT&CK technique named by an indicator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MitreTechnique {
    /// Technique id such as `T1055` or `T1055.012`, or a producer's own id kept as it gave it
    /// (`CST0007`); see [`MitreTechnique::attack_url`].
    pub id: String,
    pub name: Option<String>,
    pub tactic: Option<String>,
}

impl MitreTechnique {
    /// Returns the technique's page on attack.mitre.org, only for a real ATT&CK id: a technique
    /// `T1234` or `T1234.567`, a tactic `TA1234`. A producer's own ids (CrowdStrike's `CSTA0004`
    /// "Machine Learning", `CST0007`) are no ATT&CK ids, and turning them into one would name a
    /// wrong technique (PRODUCERS.md §2.4), so they get no link.
    #[must_use]
    pub fn attack_url(&self) -> Option<String> {
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let id = self.id.as_str();
        if let Some(tactic) = id.strip_prefix("TA") {
            return digits(tactic, 4).then(|| format!("https://attack.mitre.org/tactics/{id}/"));
        }
        let technique = id.strip_prefix('T')?;
        match technique.split_once('.') {
            Some((t, sub)) if digits(t, 4) && digits(sub, 3) => {
                Some(format!("https://attack.mitre.org/techniques/T{t}/{sub}/"))
            }
            None if digits(technique, 4) => {
                Some(format!("https://attack.mitre.org/techniques/{id}/"))
            }
            _ => None,
        }
    }
}

/// One threat from one producer, normalised. Identified by (connector, `external_id`); a later
/// update of the same threat replaces the earlier version, it never duplicates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub producer: Producer,
    /// The producer's id for the threat (SentinelOne threat id, a decimal string: never parsed
    /// into an integer because real ids exceed `u64`).
    pub external_id: String,
    /// When the producer detected the threat (`threatInfo.createdAt`).
    pub created_at: DateTime<Utc>,
    /// When the producer last changed the threat (`threatInfo.updatedAt`). May be earlier than
    /// `created_at` in real data.
    pub updated_at: DateTime<Utc>,
    pub device: Device,
    pub file: FileInfo,
    /// Threat name, the story's indication.
    pub threat_name: Option<String>,
    pub classification: Option<String>,
    /// The producer's confidence as it spells it, for display: `malicious`, `suspicious`,
    /// `n/a`, `MALICIOUS`, …
    pub confidence_level: Option<String>,
    /// The producer's mitigation status as it spells it, for display: `not_mitigated`,
    /// `mitigated`, `marked_as_benign`, …
    pub mitigation_status: Option<String>,
    /// The producer's analyst verdict as it spells it, for display: `undefined`,
    /// `true_positive`, `false_positive`, `suspicious`.
    pub analyst_verdict: Option<String>,
    /// What `confidence_level` means, whoever the producer (rules read this, never the text).
    #[serde(default)]
    pub confidence: Confidence,
    /// What `mitigation_status` means.
    #[serde(default)]
    pub mitigation: Mitigation,
    /// What `analyst_verdict` means.
    #[serde(default)]
    pub producer_verdict: ProducerVerdict,
    /// The producer's severity, where it gives one.
    #[serde(default)]
    pub severity: Option<VendorSeverity>,
    /// `unresolved`, `in_progress`, `resolved`.
    pub incident_status: Option<String>,
    pub engines: Vec<String>,
    /// Producer's storyline id; fileless threats correlate on it.
    pub storyline: Option<String>,
    pub initiated_by: Option<String>,
    pub is_fileless: bool,
    pub mitre: Vec<MitreTechnique>,
    /// Mitigation actions taken, e.g. `kill:success`, `quarantine:failed`.
    pub mitigation_actions: Vec<String>,
    /// The link to the record in the producer's console, where the record carries one
    /// (Defender's `alertWebUrl`, CrowdStrike's `falcon_host_link`), as given: never built.
    #[serde(default)]
    pub console_url: Option<String>,
    /// The producer's JSON for the threat, exactly as received (serialised text).
    pub raw: String,
}

impl Incident {
    /// Returns the producer's judgement in its own words, for display: its confidence as it
    /// spelled it (`malicious`), else its severity (`high`), else its severity's text
    /// (`30 (Low)`, which a mapper keeps in `confidence_level`).
    #[must_use]
    pub fn judgement_text(&self) -> Option<String> {
        self.confidence_level
            .clone()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| self.severity.map(|s| s.as_str().to_owned()))
    }

    /// Returns whether a newer version of an incident changes nothing an analyst sees: every
    /// field is the same but the update time and the raw JSON. CrowdStrike moves an alert's
    /// `updated_timestamp` with no visible change (PRODUCERS.md §2.7); such a version is no
    /// update of its story, raises no event, and only moves the stored update time on.
    #[must_use]
    pub fn only_touched(&self, stored: &Incident) -> bool {
        let same_times = Incident {
            updated_at: stored.updated_at,
            raw: String::new(),
            ..self.clone()
        };
        same_times
            == Incident {
                raw: String::new(),
                ..stored.clone()
            }
    }
}

#[cfg(test)]
mod tests {
    use super::MitreTechnique;

    #[test]
    fn a_version_that_moves_only_its_update_time_is_only_touched() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let stored = super::Incident {
            producer: crate::producer::test_producer(),
            external_id: "a1".into(),
            created_at: at,
            updated_at: at,
            device: super::Device::default(),
            file: super::FileInfo::default(),
            threat_name: Some("x".into()),
            classification: None,
            confidence_level: None,
            mitigation_status: None,
            analyst_verdict: None,
            confidence: crate::vocabulary::Confidence::Unknown,
            mitigation: crate::vocabulary::Mitigation::Unknown,
            producer_verdict: crate::vocabulary::ProducerVerdict::Undefined,
            severity: None,
            incident_status: Some("new".into()),
            engines: vec![],
            storyline: None,
            initiated_by: None,
            is_fileless: false,
            mitre: vec![],
            mitigation_actions: vec![],
            console_url: None,
            raw: "{\"updated\":1}".into(),
        };
        let touched = super::Incident {
            updated_at: at + chrono::Duration::seconds(5),
            raw: "{\"updated\":2}".into(),
            ..stored.clone()
        };
        assert!(touched.only_touched(&stored));
        let changed = super::Incident {
            incident_status: Some("in_progress".into()),
            ..touched.clone()
        };
        assert!(!changed.only_touched(&stored));
    }

    fn url(id: &str) -> Option<String> {
        MitreTechnique {
            id: id.into(),
            name: None,
            tactic: None,
        }
        .attack_url()
    }

    #[test]
    fn only_attack_ids_link_to_attack() {
        assert_eq!(
            url("T1055").as_deref(),
            Some("https://attack.mitre.org/techniques/T1055/")
        );
        assert_eq!(
            url("T1055.012").as_deref(),
            Some("https://attack.mitre.org/techniques/T1055/012/")
        );
        assert_eq!(
            url("TA0006").as_deref(),
            Some("https://attack.mitre.org/tactics/TA0006/")
        );
        for not_attack in [
            "CSTA0004",
            "CST0007",
            "T1055/../x",
            "T10",
            "TA00061",
            "",
            "t1055",
        ] {
            assert_eq!(url(not_attack), None, "{not_attack}");
        }
    }
}
