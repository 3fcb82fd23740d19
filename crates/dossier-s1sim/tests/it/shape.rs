//! Generated threats have the exact v2.1 shape of the real samples.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{sample, ts, TOKEN};

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn generated(n: usize) -> Vec<Value> {
    let tenant = dossier_s1sim::Tenant::new(&dossier_s1sim::SimConfig::new(77, 40, TOKEN));
    tenant.generate_history(n, ts("2025-01-01T00:00:00Z"), ts("2025-04-01T00:00:00Z"));
    tenant
        .all_ids()
        .iter()
        .map(|id| tenant.threat(id).unwrap())
        .collect()
}

#[test]
fn generated_threats_have_every_key_of_the_real_samples() {
    let swimlane = sample("swimlane_get_threat_analysis.json")[0]["json_body"]["data"].clone();
    let elastic = sample("elastic_test_pipeline_threat_line1.json");
    let all = generated(400);
    for t in &all {
        let mut top = keys(&elastic);
        if t.get("whiteningOptions").is_none() {
            top.remove("whiteningOptions");
        }
        assert!(keys(t).is_superset(&top), "top level of {}", t["id"]);
        for part in [
            "threatInfo",
            "agentRealtimeInfo",
            "containerInfo",
            "kubernetesInfo",
        ] {
            let missing: Vec<_> = keys(&swimlane[part])
                .difference(&keys(&t[part]))
                .cloned()
                .collect();
            assert!(missing.is_empty(), "{part} lacks {missing:?}");
        }
        let missing: Vec<_> = keys(&elastic["agentDetectionInfo"])
            .difference(&keys(&t["agentDetectionInfo"]))
            .cloned()
            .collect();
        assert!(missing.is_empty(), "agentDetectionInfo lacks {missing:?}");
        let iface = &t["agentRealtimeInfo"]["networkInterfaces"][0];
        assert!(
            keys(iface).is_superset(&keys(&elastic["agentRealtimeInfo"]["networkInterfaces"][0]))
        );
        assert_eq!(t["id"], t["threatInfo"]["threatId"]);
        for action in t["mitigationStatus"].as_array().unwrap() {
            assert!(keys(action).is_superset(&keys(&elastic["mitigationStatus"][0])));
        }
        let info = &t["threatInfo"];
        assert!(
            ["malicious", "suspicious", "n/a"].contains(&info["confidenceLevel"].as_str().unwrap())
        );
        assert_eq!(info["detectionEngines"][0].as_object().unwrap().len(), 2);
        assert!(info["engines"].is_array());
    }
}

#[test]
fn indicators_carry_mitre_techniques() {
    let all = generated(400);
    let techniques: Vec<&Value> = all
        .iter()
        .flat_map(|t| t["indicators"].as_array().unwrap())
        .flat_map(|i| i["tactics"].as_array().unwrap())
        .inspect(|tactic| assert_eq!(tactic["source"], "MITRE"))
        .flat_map(|tactic| tactic["techniques"].as_array().unwrap())
        .collect();
    assert!(!techniques.is_empty());
    for t in techniques {
        let name = t["name"].as_str().unwrap();
        assert!(name.starts_with('T'), "{name}");
        assert_eq!(
            t["link"].as_str().unwrap(),
            format!(
                "https://attack.mitre.org/techniques/{}/",
                name.replace('.', "/")
            )
        );
    }
}
