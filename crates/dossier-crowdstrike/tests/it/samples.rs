//! Every real Falcon alert in `tests/samples/` maps (or is refused, for non-endpoint ones), and
//! the mapping is reviewed as a snapshot.

use dossier_crowdstrike::{map_alert, map_owned_alert, remap_stored, MapError};
use dossier_domain::vocabulary::{DeviceKind, Mitigation, ProducerVerdict, VendorSeverity};
use serde_json::value::RawValue;
use serde_json::Value;

pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samples");

pub fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

/// The endpoint alerts of the samples.
const ENDPOINT: [&str; 2] = [
    "elastic_alert_epp_ldt_line1",
    "elastic_alert_ods_composite_line3",
];

#[test]
fn endpoint_samples_map_as_reviewed() {
    for name in ENDPOINT {
        let text = read(&format!("{name}.json"));
        let mut incident = map_owned_alert(raw(&text)).unwrap();
        assert_eq!(incident.raw, text, "the raw text is kept byte for byte");
        incident.raw = String::new();
        insta::assert_json_snapshot!(name, incident);
    }
}

#[test]
fn the_ldt_sample_keys_on_its_device_and_sha256_and_keeps_crowdstrike_ids() {
    let i = map_alert(&raw(&read("elastic_alert_epp_ldt_line1.json"))).unwrap();
    assert_eq!(i.external_id, "92012896127c4a8236ba7601b886b0:ind:2ce412d17b334ad4adc8c1c54dbfec4b:399748687993-5761-42627600");
    assert_eq!(
        i.device.agent_uuid.as_deref(),
        Some("2ce412d17b334ad4adc8c1c54dbfec4b")
    );
    assert_eq!(i.device.kind, DeviceKind::Workstation);
    assert_eq!(
        i.file.sha256.as_deref(),
        Some("b26a6791b72753d2317efd5e1363d93fdd33e611c8b9e08a3b24ea4d755b81fd")
    );
    assert_eq!(i.file.sha1, None, "an all-zero sha1 is no hash");
    // Severity 30 and no severity_name: the number's band.
    assert_eq!(i.severity, Some(VendorSeverity::Low));
    assert_eq!(i.confidence_level.as_deref(), Some("30 (Low)"));
    assert_eq!(
        i.mitigation,
        Mitigation::Mitigated,
        "process_blocked and quarantine_file"
    );
    assert_eq!(i.mitre.len(), 1);
    assert_eq!(i.mitre[0].id, "CST0000", "never turned into a MITRE id");
    assert_eq!(i.mitre[0].attack_url(), None);
    assert_eq!(
        i.mitre[0].tactic.as_deref(),
        Some("MachineLearning (CSTA0004)")
    );
    assert_eq!(
        i.console_url.as_deref(),
        Some("https://falcon.us-2.crowdstrike.com/activity-v2/detections/dhjffg:ind:2ce412d17b334ad4adc8c1c54dbfec4b:399748687993-5761-42627600")
    );
    assert_eq!(
        i.created_at.timestamp_subsec_nanos(),
        995_794_943,
        "nine fractional digits kept"
    );
}

#[test]
fn the_ods_sample_carries_the_analysts_verdict_and_no_storyline() {
    let i = map_alert(&raw(&read("elastic_alert_ods_composite_line3.json"))).unwrap();
    assert_eq!(i.producer_verdict, ProducerVerdict::TruePositive);
    assert_eq!(i.analyst_verdict.as_deref(), Some("true_positive"));
    assert_eq!(i.incident_status.as_deref(), Some("closed"));
    assert_eq!(i.severity, Some(VendorSeverity::Medium));
    assert_eq!(i.confidence_level.as_deref(), Some("50 (Medium)"));
    // agent_id (15 chars) differs from device.device_id: the device's id is the key.
    assert_eq!(
        i.device.agent_uuid.as_deref(),
        Some("fbcedb3fa77548959b7efec739d5b6cd")
    );
    assert_eq!(i.storyline, None, "aggregate_id is empty");
}

#[test]
fn the_identity_sample_is_refused_as_no_endpoint_alert() {
    let e = map_alert(&raw(&read("elastic_alert_idp_line2.json"))).unwrap_err();
    assert!(
        matches!(&e, MapError::NotEndpoint { product: Some(p), .. } if p == "idp"),
        "{e}"
    );
    assert!(remap_stored(&read("elastic_alert_idp_line2.json")).is_none());
}

#[test]
fn a_bump_of_updated_timestamp_alone_maps_to_the_same_incident_but_its_update_time() {
    // PRODUCERS.md §2.7: CrowdStrike moves updated_timestamp (and the crawl and the device's
    // last-seen times) with no visible change.
    for name in ENDPOINT {
        let text = read(&format!("{name}.json"));
        let mut bumped: Value = serde_json::from_str(&text).unwrap();
        bumped["updated_timestamp"] = "2030-01-01T00:00:00.123456789Z".into();
        bumped["crawled_timestamp"] = "2030-01-01T00:00:00.123456789Z".into();
        bumped["device"]["last_seen"] = "2030-01-01T00:00:00Z".into();
        bumped["device"]["modified_timestamp"] = "2030-01-01T00:00:00Z".into();
        bumped["device"]["agent_local_time"] = "2030-01-01T00:00:00.000Z".into();
        let before = remap_stored(&text).unwrap();
        let mut after = remap_stored(&bumped.to_string()).unwrap();
        assert_ne!(after.updated_at, before.updated_at);
        after.updated_at = before.updated_at;
        assert_eq!(after, before, "{name}");
    }
}

#[test]
fn the_query_page_mock_holds_composite_ids() {
    let page: Value =
        serde_json::from_str(&read("elastic_mock_queries_alerts_v2_page.json")).unwrap();
    assert!(page["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(Value::is_string));
    assert_eq!(page["meta"]["pagination"]["total"], 3);
}

/// The story's entities from a Falcon alert: the user with its logon domain, the process tree
/// with each command line and parent, the host's containment state, and the alert as the
/// indicator with CrowdStrike's own technique id.
#[test]
fn the_ldt_sample_names_its_user_process_tree_and_indicator() {
    let i = map_alert(&raw(&read("elastic_alert_epp_ldt_line1.json"))).unwrap();
    assert_eq!(i.device.network_status.as_deref(), Some("normal"));
    let e = dossier_domain::entities::of(&[i]);
    assert_eq!(e.users[0].name, "ABSYS\\mohit.jha");
    let tree: Vec<(Option<&str>, Option<&str>)> = e
        .processes
        .iter()
        .map(|p| (p.name.as_deref(), p.parent.as_deref()))
        .collect();
    assert_eq!(
        tree,
        [
            (
                Some("openvpn-abc-pfSense-UDP4-1194-pfsense-install-2.6.5-I001-amd64.exe"),
                Some("explorer.exe")
            ),
            (Some("explorer.exe"), Some("userinit.exe")),
            (Some("userinit.exe"), None),
        ]
    );
    assert_eq!(
        e.processes[1].command_line.as_deref(),
        Some("C:\\WINDOWS\\Explorer.EXE")
    );
    assert!(e.processes[0]
        .command_line
        .as_deref()
        .is_some_and(|c| c.contains("openvpn-cds")));
    assert_eq!(e.files.len(), 1);
    assert_eq!(e.indicators[0].techniques, ["CST0000"]);
    assert_eq!(e.indicators[0].category.as_deref(), Some("MachineLearning"));
}

/// A file the process wrote (`ioc_context`) is an entity of its own beside the alert's file.
#[test]
fn the_ods_sample_names_the_file_its_process_wrote() {
    let i = map_alert(&raw(&read("elastic_alert_ods_composite_line3.json"))).unwrap();
    let e = dossier_domain::entities::of(&[i]);
    let names: Vec<Option<&str>> = e.files.iter().map(|f| f.name.as_deref()).collect();
    assert_eq!(
        names,
        [Some("setup.exe"), Some("Keygen.exe")],
        "{:?}",
        e.files
    );
    assert_eq!(
        e.files[1].sha256.as_deref(),
        Some("d7606155185cf8a9aa78a56cf486ed48ede0119490e1f087c03d502890c475c9")
    );
}
