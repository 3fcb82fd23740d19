//! Simulated agents (devices) and the account/site/group layout they live in.
//!
//! Each agent's `agentRealtimeInfo` and `agentDetectionInfo` objects are serialised once, at
//! creation, and spliced into every threat of that agent.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::catalog::{Os, FIRST_NAMES, GROUP_NAMES, LAST_NAMES, SITE_NAMES};
use crate::host::{
    agent_version, choose_os, computer_name, dashed_uuid, link_local, mac_address, pick,
    windows_uuid,
};
use crate::ids::snowflake;
use crate::time::{format_micros, parse_micros};

/// A site or group: `(id, name)`.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub id: String,
    pub name: String,
}

/// The account with its sites and groups.
pub(crate) struct Layout {
    pub account: Scope,
    pub sites: Vec<Scope>,
    /// `(site index, group)`.
    pub groups: Vec<(usize, Scope)>,
}

/// One simulated device.
#[expect(
    clippy::struct_field_names,
    reason = "`agent_version` is the API's `agentVersion`, kept under its own name"
)]
pub(crate) struct Agent {
    pub id: String,
    pub os: Os,
    pub computer_name: String,
    pub machine_type: &'static str,
    pub user: String,
    pub account_id: String,
    pub site_id: String,
    pub group_id: String,
    pub agent_version: String,
    /// `agentMitigationMode` is `protect` (threats are mitigated automatically).
    pub protect: bool,
    /// `agentRealtimeInfo`, serialised.
    pub realtime: Box<RawValue>,
    /// `agentDetectionInfo` for threats detected after `upgraded_at`.
    pub detection: Box<RawValue>,
    /// `agentDetectionInfo` for threats detected before `upgraded_at` (older agent version,
    /// another group: agents move, see pitfall 15).
    pub detection_before: Box<RawValue>,
    pub upgraded_at: i64,
}

fn ts(text: &str) -> i64 {
    parse_micros(text).unwrap_or(0)
}

fn raw(value: &Value) -> Box<RawValue> {
    // Serialising a `Value` cannot fail (string keys only); the default is `null`.
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

impl Layout {
    /// Returns an account with 1–3 sites and a few groups per site.
    pub(crate) fn generate(rng: &mut StdRng) -> Self {
        let base = ts("2020-06-01T00:00:00Z");
        let id = |rng: &mut StdRng| {
            snowflake(
                base + rng.gen_range(0..400_000_000_000),
                rng.gen_range(0..1 << 23),
            )
            .to_string()
        };
        let account = Scope {
            id: id(rng),
            name: "Acme Corp".to_owned(),
        };
        let site_count = rng.gen_range(1..=3);
        let sites: Vec<Scope> = SITE_NAMES[..site_count]
            .iter()
            .map(|name| Scope {
                id: id(rng),
                name: (*name).to_owned(),
            })
            .collect();
        let mut groups = Vec::new();
        for site in 0..sites.len() {
            let count = rng.gen_range(2..=4);
            for name in GROUP_NAMES.iter().take(count) {
                groups.push((
                    site,
                    Scope {
                        id: id(rng),
                        name: (*name).to_owned(),
                    },
                ));
            }
        }
        Self {
            account,
            sites,
            groups,
        }
    }
}

impl Agent {
    /// Returns a new agent in `layout`; its registration time drives its snowflake id.
    pub(crate) fn generate(rng: &mut StdRng, layout: &Layout) -> Self {
        let choice = choose_os(rng);
        let os = choice.os;
        let first = *pick(rng, FIRST_NAMES);
        let last = *pick(rng, LAST_NAMES);
        let user = if rng.gen_bool(0.5) {
            format!("{}{}", &first[..1], last)
        } else {
            format!("{first}.{last}")
        };
        let registered = ts("2021-01-01T00:00:00Z") + rng.gen_range(0..94_608_000_000_000);
        let id = snowflake(registered, rng.gen_range(0..1 << 23)).to_string();
        let uuid = match os {
            Os::Windows => windows_uuid(rng),
            Os::Mac => dashed_uuid(rng).to_ascii_uppercase(),
            Os::Linux => dashed_uuid(rng),
        };
        let computer_name = computer_name(rng, os, choice.machine_type, first);
        let (site_index, group) = {
            let g = pick(rng, &layout.groups);
            (g.0, g.1.clone())
        };
        let site = &layout.sites[site_index];
        // Agents move between groups of a site: the detection-time group may differ.
        let old_group = layout
            .groups
            .iter()
            .filter(|(s, _)| *s == site_index)
            .nth(rng.gen_range(0..2))
            .map_or_else(|| group.clone(), |(_, g)| g.clone());
        let version = agent_version(rng, os, false);
        let old_version = agent_version(rng, os, true);
        let domain = match os {
            Os::Windows if rng.gen_bool(0.8) => "ACME",
            Os::Windows => "WORKGROUP",
            _ => "",
        };
        let lan = format!(
            "10.{}.{}.{}",
            10 + site_index,
            rng.gen_range(0..255),
            rng.gen_range(2..255)
        );
        let lan6 = link_local(rng);
        let external = format!("203.0.113.{}", 10 + site_index * 20 + rng.gen_range(0..20));
        let iface_name = match os {
            Os::Windows if choice.machine_type == "laptop" => "Wi-Fi",
            Os::Windows => "Ethernet",
            Os::Mac => "en0",
            Os::Linux => *pick(rng, &["eth0", "ens192", "ens5"]),
        };
        let iface_id = snowflake(registered + 5_000_000, rng.gen_range(0..1 << 23)).to_string();
        let scan_started = registered + rng.gen_range(5_000_000..60_000_000);
        let scan_finished = scan_started + rng.gen_range(600_000_000..7_200_000_000);
        let mitigation_mode = if rng.gen_bool(0.85) {
            "protect"
        } else {
            "detect"
        };
        let realtime = json!({
            "accountId": layout.account.id, "accountName": layout.account.name,
            "activeThreats": rng.gen_range(0..3), "agentComputerName": computer_name,
            "agentDecommissionedAt": null, "agentDomain": domain, "agentId": id,
            "agentInfected": false, "agentIsActive": rng.gen_bool(0.93),
            "agentIsDecommissioned": false, "agentMachineType": choice.machine_type,
            "agentMitigationMode": mitigation_mode, "agentNetworkStatus": "connected",
            "agentOsName": choice.os_name, "agentOsRevision": choice.revision,
            "agentOsType": os.os_type(), "agentUuid": uuid, "agentVersion": version,
            "groupId": group.id, "groupName": group.name,
            "networkInterfaces": [{
                "id": iface_id, "inet": [lan], "inet6": [lan6], "name": iface_name,
                "physical": mac_address(rng),
            }],
            "operationalState": "na", "rebootRequired": false, "scanAbortedAt": null,
            "scanFinishedAt": format_micros(scan_finished),
            "scanStartedAt": format_micros(scan_started), "scanStatus": "finished",
            "siteId": site.id, "siteName": site.name, "storageName": null, "storageType": null,
            "userActionsNeeded": [],
        });
        let detection_for = |version: &str, group: &Scope| {
            json!({
                "accountId": layout.account.id, "accountName": layout.account.name,
                "agentDetectionState": null, "agentDomain": domain,
                "agentIpV4": lan, "agentIpV6": lan6, "agentLastLoggedInUpn": null,
                "agentLastLoggedInUserMail": null, "agentLastLoggedInUserName": user,
                "agentMitigationMode": mitigation_mode, "agentOsName": choice.os_name,
                "agentOsRevision": choice.revision,
                "agentRegisteredAt": format_micros(registered), "agentUuid": uuid,
                "agentVersion": version, "cloudProviders": {}, "externalIp": external,
                "groupId": group.id, "groupName": group.name,
                "siteId": site.id, "siteName": site.name,
            })
        };
        let detection = raw(&detection_for(&version, &group));
        let detection_before = raw(&detection_for(&old_version, &old_group));
        Self {
            upgraded_at: ts("2024-07-01T00:00:00Z") + rng.gen_range(0..47_304_000_000_000),
            id,
            os,
            computer_name,
            machine_type: choice.machine_type,
            user,
            account_id: layout.account.id.clone(),
            site_id: site.id.clone(),
            group_id: group.id,
            agent_version: version,
            protect: mitigation_mode == "protect",
            realtime: raw(&realtime),
            detection,
            detection_before,
        }
    }
}

/// Returns a raw JSON value for a constant known to be valid (`null` otherwise).
pub(crate) fn raw_const(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap_or_default()
}

/// Keys of `agentDetectionInfo`, as in the samples.
const DETECTION_KEYS: &[&str] = &[
    "accountId",
    "accountName",
    "agentDetectionState",
    "agentDomain",
    "agentIpV4",
    "agentIpV6",
    "agentLastLoggedInUpn",
    "agentLastLoggedInUserMail",
    "agentLastLoggedInUserName",
    "agentMitigationMode",
    "agentOsName",
    "agentOsRevision",
    "agentRegisteredAt",
    "agentUuid",
    "agentVersion",
    "cloudProviders",
    "externalIp",
    "groupId",
    "groupName",
    "siteId",
    "siteName",
];

/// Returns the `agentDetectionInfo` of old threats: every key present, every value null (the
/// 2019 demisto sample).
pub(crate) fn null_detection() -> Box<RawValue> {
    let object: serde_json::Map<String, Value> = DETECTION_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), Value::Null))
        .collect();
    raw(&Value::Object(object))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn uuid_format_follows_the_os() {
        let mut rng = StdRng::seed_from_u64(7);
        let layout = Layout::generate(&mut rng);
        for _ in 0..300 {
            let a = Agent::generate(&mut rng, &layout);
            let rt: Value = serde_json::from_str(a.realtime.get()).unwrap();
            let uuid = rt["agentUuid"].as_str().unwrap();
            let det: Value = serde_json::from_str(a.detection.get()).unwrap();
            assert_eq!(det["agentUuid"], uuid);
            assert_eq!(rt["agentOsType"], a.os.os_type());
            assert_eq!(a.id.len(), 19, "{}", a.id);
            match a.os {
                Os::Windows => {
                    assert_eq!(uuid.len(), 32);
                    assert!(uuid.bytes().all(|b| crate::host::HEX.contains(&b)));
                }
                Os::Mac => {
                    assert_eq!(uuid.len(), 36);
                    assert_eq!(uuid, uuid.to_ascii_uppercase());
                }
                Os::Linux => {
                    assert_eq!(uuid.len(), 36);
                    assert_eq!(uuid, uuid.to_ascii_lowercase());
                }
            }
        }
    }

    #[test]
    fn null_detection_info_has_every_key() {
        let mut rng = StdRng::seed_from_u64(1);
        let layout = Layout::generate(&mut rng);
        let agent = Agent::generate(&mut rng, &layout);
        let real: Value = serde_json::from_str(agent.detection.get()).unwrap();
        let null: Value = serde_json::from_str(null_detection().get()).unwrap();
        let keys = |v: &Value| {
            v.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<_>>()
        };
        assert_eq!(keys(&real), keys(&null));
        assert!(null.as_object().unwrap().values().all(Value::is_null));
    }
}
