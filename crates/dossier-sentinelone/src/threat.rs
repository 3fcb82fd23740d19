//! The private, permissive model of a v2.1 threat object (SENTINELONE.md §2).
//!
//! Only the fields the mapping reads are declared; serde skips the rest without building them.
//! Every field is a lenient wrapper from [`crate::lenient`], so a wrong type degrades to
//! "absent" instead of failing the whole threat (§6.13). Identifiers are captured as raw JSON
//! text so that a numeric id longer than `u64` keeps every digit (§6.10).

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::lenient::{Bool, Obj, Seq, Str, U64};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RawThreat<'a> {
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub threat_info: Obj<ThreatInfo<'a>>,
    pub agent_realtime_info: Obj<RealtimeInfo>,
    pub agent_detection_info: Obj<DetectionInfo>,
    pub indicators: Seq<Obj<Indicator>>,
    /// The array of mitigation actions, not `threatInfo.mitigationStatus` (§6.14).
    pub mitigation_status: Seq<Obj<MitigationAction>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct ThreatInfo<'a> {
    #[serde(borrow)]
    pub threat_id: Option<&'a RawValue>,
    pub threat_name: Str,
    pub classification: Str,
    pub confidence_level: Str,
    /// The string enum (`not_mitigated`, `mitigated`, …), §6.14.
    pub mitigation_status: Str,
    pub analyst_verdict: Str,
    pub incident_status: Str,
    pub created_at: Str,
    pub updated_at: Str,
    pub identified_at: Str,
    pub storyline: Str,
    pub sha1: Str,
    pub sha256: Str,
    pub md5: Str,
    pub file_path: Str,
    pub file_size: U64,
    pub publisher_name: Str,
    pub file_verification_type: Str,
    pub initiated_by: Str,
    pub is_fileless: Bool,
    pub engines: Seq<Str>,
    pub detection_engines: Seq<EngineTitle>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct RealtimeInfo {
    pub agent_id: Str,
    pub agent_uuid: Str,
    pub agent_computer_name: Str,
    pub agent_os_type: Str,
    pub agent_os_name: Str,
    pub agent_machine_type: Str,
    pub agent_domain: Str,
    pub site_name: Str,
    pub group_name: Str,
    pub network_interfaces: Seq<Obj<NetworkInterface>>,
    pub network_status: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct DetectionInfo {
    pub agent_uuid: Str,
    pub agent_os_name: Str,
    /// Comma-separated addresses.
    pub agent_ip_v4: Str,
    /// Comma-separated addresses.
    pub agent_ip_v6: Str,
    pub agent_domain: Str,
    pub site_name: Str,
    pub group_name: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct NetworkInterface {
    pub inet: Seq<Str>,
    pub inet6: Seq<Str>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Indicator {
    pub tactics: Seq<Obj<Tactic>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Tactic {
    pub name: Str,
    pub techniques: Seq<Obj<Technique>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Technique {
    pub name: Str,
    pub link: Str,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct MitigationAction {
    pub action: Str,
    pub status: Str,
}

/// One `detectionEngines[]` entry: `{"key","title"}` in real data, a bare string in the console
/// doc example. Yields the title (or the string); any other shape yields `None`.
#[derive(Debug, Default)]
pub(crate) struct EngineTitle(pub Option<String>);

#[derive(Default, Deserialize)]
#[serde(default)]
struct EngineEntry {
    title: Str,
}

impl<'de> Deserialize<'de> for EngineTitle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::MapAccessDeserializer;
        use serde::de::{Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
        use std::fmt;

        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EngineTitle;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a detection engine")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EngineTitle, A::Error> {
                let entry = EngineEntry::deserialize(MapAccessDeserializer::new(map))?;
                Ok(EngineTitle(entry.title.into_inner()))
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<EngineTitle, E> {
                Ok(EngineTitle(
                    Some(v.to_owned()).filter(|s| !s.trim().is_empty()),
                ))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<EngineTitle, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| EngineTitle(None))
            }
            fn visit_u64<E: Error>(self, _: u64) -> Result<EngineTitle, E> {
                Ok(EngineTitle(None))
            }
            fn visit_i64<E: Error>(self, _: i64) -> Result<EngineTitle, E> {
                Ok(EngineTitle(None))
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<EngineTitle, E> {
                Ok(EngineTitle(None))
            }
            fn visit_bool<E: Error>(self, _: bool) -> Result<EngineTitle, E> {
                Ok(EngineTitle(None))
            }
            fn visit_unit<E: Error>(self) -> Result<EngineTitle, E> {
                Ok(EngineTitle(None))
            }
        }
        d.deserialize_any(V)
    }
}
