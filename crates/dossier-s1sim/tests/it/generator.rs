use std::collections::{HashMap, HashSet};

use chrono::Duration;
use dossier_s1sim::{SimConfig, Tenant};
use serde_json::Value;

use crate::helpers::{id_order, ts, TOKEN};

fn history(seed: u64, agents: usize, n: usize) -> (Tenant, Vec<String>) {
    let tenant = Tenant::new(&SimConfig::new(seed, agents, TOKEN));
    let ids = tenant.generate_history(n, ts("2025-01-01T00:00:00Z"), ts("2025-04-01T00:00:00Z"));
    (tenant, ids)
}

fn threats(tenant: &Tenant) -> Vec<Value> {
    tenant
        .all_ids()
        .iter()
        .map(|id| tenant.threat(id).unwrap())
        .collect()
}

#[test]
fn same_seed_same_threats() {
    let (a, ids_a) = history(42, 30, 300);
    let (b, ids_b) = history(42, 30, 300);
    assert_eq!(ids_a, ids_b);
    assert_eq!(threats(&a), threats(&b));
    let now = ts("2025-04-02T00:00:00Z");
    assert_eq!(a.generate_live(now), b.generate_live(now));
    let (c, ids_c) = history(43, 30, 300);
    assert_ne!(ids_a, ids_c);
    assert_ne!(threats(&a)[0], threats(&c)[0]);
}

#[test]
fn live_threats_are_new_and_fresh() {
    let (tenant, ids) = history(1, 20, 100);
    let now = ts("2025-05-01T08:30:00.123456Z");
    let id = tenant.generate_live(now);
    assert_eq!(tenant.threat_count(), 101);
    assert!(
        ids.iter().all(|old| id_order(old, &id).is_lt()),
        "ids grow with creation"
    );
    let t = tenant.threat(&id).unwrap();
    assert_eq!(t["threatInfo"]["createdAt"], "2025-05-01T08:30:00.123456Z");
    assert_eq!(t["threatInfo"]["updatedAt"], "2025-05-01T08:30:00.123456Z");
    // Many threats in the same instant still get distinct ids.
    let burst: HashSet<String> = (0..200).map(|_| tenant.generate_live(now)).collect();
    assert_eq!(burst.len(), 200);
}

#[test]
fn agents_follow_os_conventions_and_shares() {
    let (tenant, _) = history(9, 400, 4000);
    let mut agents: HashMap<String, (String, String, String)> = HashMap::new();
    for t in threats(&tenant) {
        let a = &t["agentRealtimeInfo"];
        let id = a["agentId"].as_str().unwrap().to_owned();
        assert_eq!(id.len(), 19);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
        let entry = (
            a["agentOsType"].as_str().unwrap().to_owned(),
            a["agentUuid"].as_str().unwrap().to_owned(),
            a["agentMachineType"].as_str().unwrap().to_owned(),
        );
        agents.insert(id, entry);
    }
    let mut per_os: HashMap<&str, usize> = HashMap::new();
    for (os, uuid, _) in agents.values() {
        *per_os.entry(os.as_str()).or_default() += 1;
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        match os.as_str() {
            "windows" => assert!(
                uuid.len() == 32 && hex(uuid) && *uuid == uuid.to_lowercase(),
                "{uuid}"
            ),
            "macos" => assert!(
                uuid.len() == 36 && hex(uuid) && *uuid == uuid.to_uppercase() && uuid.contains('-'),
                "{uuid}"
            ),
            "linux" => assert!(
                uuid.len() == 36 && hex(uuid) && *uuid == uuid.to_lowercase() && uuid.contains('-'),
                "{uuid}"
            ),
            other => panic!("unexpected os {other}"),
        }
    }
    let total = agents.len() as f64;
    let share = |os: &str| per_os.get(os).copied().unwrap_or_default() as f64 / total;
    assert!((0.5..0.7).contains(&share("windows")), "{per_os:?}");
    assert!((0.08..0.22).contains(&share("macos")), "{per_os:?}");
    assert!((0.17..0.33).contains(&share("linux")), "{per_os:?}");
    assert!(agents.values().any(|(_, _, m)| m == "server"));
    assert!(agents.values().any(|(_, _, m)| m == "laptop"));
}

#[test]
fn fileless_share_and_shape() {
    let (tenant, _) = history(5, 100, 4000);
    let all = threats(&tenant);
    let fileless: Vec<&Value> = all
        .iter()
        .filter(|t| t["threatInfo"]["isFileless"] == true)
        .collect();
    let share = fileless.len() as f64 / all.len() as f64;
    assert!((0.03..0.07).contains(&share), "{share}");
    for t in fileless {
        let i = &t["threatInfo"];
        assert_eq!(i["sha1"], "");
        assert_eq!(i["filePath"], "");
        assert_eq!(i["initiatedBy"], "star_active");
        assert!(!i["storyline"].as_str().unwrap().is_empty());
    }
    assert!(all.iter().all(|t| t["threatInfo"]["isFileless"] == true
        || t["threatInfo"]["sha1"].as_str().unwrap().len() == 40));
}

#[test]
fn hashes_recur_on_one_agent_and_spread_in_outbreaks() {
    let (tenant, _) = history(12, 300, 3000);
    let all = threats(&tenant);
    let mut per_pair: HashMap<(String, String), Vec<String>> = HashMap::new();
    let mut agents_per_hash: HashMap<String, HashSet<String>> = HashMap::new();
    for t in &all {
        let sha1 = t["threatInfo"]["sha1"].as_str().unwrap().to_owned();
        if sha1.is_empty() {
            continue;
        }
        let agent = t["agentRealtimeInfo"]["agentUuid"]
            .as_str()
            .unwrap()
            .to_owned();
        let created = t["threatInfo"]["createdAt"].as_str().unwrap().to_owned();
        per_pair
            .entry((agent.clone(), sha1.clone()))
            .or_default()
            .push(created);
        agents_per_hash.entry(sha1).or_default().insert(agent);
    }
    // The same file comes back on one device over days and weeks.
    let recurring = per_pair
        .values()
        .filter(|times| {
            let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
            times.len() >= 3 && ts(max) - ts(min) >= Duration::days(2)
        })
        .count();
    assert!(recurring >= 20, "{recurring} recurring device+hash pairs");
    // A few outbreak files on many devices, while most hashes stay on one device.
    let outbreaks = agents_per_hash
        .values()
        .filter(|agents| agents.len() >= 15)
        .count();
    assert!(outbreaks >= 1, "{outbreaks} outbreak hashes");
    let single_device = agents_per_hash
        .values()
        .filter(|agents| agents.len() == 1)
        .count();
    assert!(
        single_device * 2 > agents_per_hash.len(),
        "{single_device} of {}",
        agents_per_hash.len()
    );
    assert!(outbreaks * 10 < agents_per_hash.len());
    // sha256 ~40 %, md5 ~20 % of file threats, always consistent with the sha1.
    let files: Vec<&Value> = all
        .iter()
        .filter(|t| t["threatInfo"]["sha1"] != "")
        .collect();
    let with = |k: &str| {
        files
            .iter()
            .filter(|t| t["threatInfo"][k].is_string())
            .count() as f64
            / files.len() as f64
    };
    assert!((0.35..0.45).contains(&with("sha256")), "{}", with("sha256"));
    assert!((0.16..0.24).contains(&with("md5")), "{}", with("md5"));
    let mut sha256_of: HashMap<&str, &str> = HashMap::new();
    for t in &files {
        if let Some(sha256) = t["threatInfo"]["sha256"].as_str() {
            let sha1 = t["threatInfo"]["sha1"].as_str().unwrap();
            assert_eq!(
                *sha256_of.entry(sha1).or_insert(sha256),
                sha256,
                "inconsistent triple"
            );
        }
    }
}

#[test]
fn timestamps_ids_and_later_updates() {
    let (tenant, ids) = history(21, 50, 2000);
    let all = threats(&tenant);
    let time = |t: &Value, k: &str| ts(t["threatInfo"][k].as_str().unwrap());
    let earlier = all
        .iter()
        .filter(|t| time(t, "updatedAt") < time(t, "createdAt"))
        .count();
    let later = all
        .iter()
        .filter(|t| time(t, "updatedAt") > time(t, "createdAt") + Duration::hours(1))
        .count();
    assert!(
        earlier >= 10,
        "{earlier} threats with updatedAt < createdAt"
    );
    assert!(later >= 300, "{later} threats updated later");
    assert!(all
        .iter()
        .any(|t| t["threatInfo"]["analystVerdict"] == "false_positive"));
    assert!(all
        .iter()
        .any(|t| t["threatInfo"]["incidentStatus"] == "resolved"));
    assert!(all
        .iter()
        .all(|t| time(t, "updatedAt") <= ts("2025-04-01T00:00:00Z")));
    // Format: microseconds and Z.
    let created = all[0]["threatInfo"]["createdAt"].as_str().unwrap();
    assert_eq!(
        created.len(),
        "2021-03-16T14:00:16.879105Z".len(),
        "{created}"
    );
    // Ids: 19-digit decimals growing with creation time.
    assert!(ids
        .iter()
        .all(|id| id.len() == 19 && id.bytes().all(|b| b.is_ascii_digit())));
    let mut by_created: Vec<(chrono::DateTime<chrono::Utc>, String)> = all
        .iter()
        .map(|t| (time(t, "createdAt"), t["id"].as_str().unwrap().to_owned()))
        .collect();
    by_created.sort();
    assert!(by_created
        .windows(2)
        .all(|w| id_order(&w[0].1, &w[1].1).is_lt()));
    // Some old threats carry an all-null agentDetectionInfo.
    assert!(all
        .iter()
        .any(|t| t["agentDetectionInfo"]["agentUuid"].is_null()));
}
