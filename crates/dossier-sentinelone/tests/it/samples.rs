//! Every real SentinelOne threat in `testdata/sentinelone/` maps, and every envelope parses.

use dossier_domain::Incident;
use dossier_sentinelone::{
    map_owned_threat, map_threat, parse_error, parse_page, EnvelopeError, Page,
};
use serde::Deserialize;
use serde_json::value::RawValue;

pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/sentinelone");

pub fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

/// Swimlane's captures wrap the response: `[{"status_code", "response_headers", "json_body"}]`.
fn swimlane_body(name: &str) -> String {
    #[derive(Deserialize)]
    struct Capture {
        json_body: Box<RawValue>,
    }
    let captures: Vec<Capture> = serde_json::from_str(&read(name)).unwrap();
    captures[0].json_body.get().to_owned()
}

/// Files whose whole text is one threat object.
pub const BARE_THREATS: [&str; 8] = [
    "sekoia_threat.json",
    "sekoia_threat2.json",
    "sekoia_threat3.json",
    "sekoia_threat4.json",
    "sekoia_threat5.json",
    "sekoia_cloud_providers.json",
    "elastic_test_pipeline_threat_line1.json",
    "sumologic_threat_macos.json",
];

/// Every threat object of the samples as (snapshot name, raw text).
pub fn all_threats() -> Vec<(String, Box<RawValue>)> {
    let mut out = Vec::new();
    for file in BARE_THREATS {
        let name = file.trim_end_matches(".json").to_owned();
        out.push((name, RawValue::from_string(read(file)).unwrap()));
    }
    let envelopes = [
        (
            "demisto_threat_analysis_raw",
            read("demisto_threat_analysis_raw.json"),
        ),
        (
            "swimlane_get_threat_analysis",
            swimlane_body("swimlane_get_threat_analysis.json"),
        ),
        (
            "demisto_eventcollector_threats",
            read("demisto_eventcollector_threats.json"),
        ),
        (
            "swimlane_get_threats",
            swimlane_body("swimlane_get_threats.json"),
        ),
    ];
    for (name, body) in envelopes {
        let page = parse_page(body.as_bytes()).unwrap();
        let n = page.threats.len();
        for (i, t) in page.threats.into_iter().enumerate() {
            let name = if n == 1 {
                name.to_owned()
            } else {
                format!("{name}_{i}")
            };
            out.push((name, t));
        }
    }
    out
}

fn map(name: &str) -> Incident {
    let (_, raw) = all_threats().into_iter().find(|(n, _)| n == name).unwrap();
    map_threat(&raw).unwrap()
}

#[test]
fn every_sample_threat_maps_to_the_snapshot() {
    let threats = all_threats();
    assert_eq!(
        threats.len(),
        13,
        "12 real threat objects plus the doc example"
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for (name, raw) in &threats {
            let incident = map_threat(raw).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(incident.raw, raw.get(), "{name}: raw text kept exactly");
            // What the worker uses, keeping the page's own text: the same incident.
            assert_eq!(map_owned_threat(raw.clone()).unwrap(), incident, "{name}");
            let mut value = serde_json::to_value(&incident).unwrap();
            value.as_object_mut().unwrap().remove("raw");
            insta::assert_json_snapshot!(name.as_str(), value);
        }
    });
}

#[test]
fn twenty_digit_ids_stay_strings() {
    assert_eq!(
        map("sekoia_cloud_providers").external_id,
        "55555555555555555555"
    );
}

#[test]
fn top_level_id_wins_over_threat_id() {
    // sumologic's sanitizer left `id` and `threatInfo.threatId` different.
    assert_eq!(
        map("sumologic_threat_macos").external_id,
        "1642172211953801585"
    );
    // The analysis endpoints carry only `threatInfo.threatId`.
    assert_eq!(
        map("swimlane_get_threat_analysis").external_id,
        "1311010474425970168"
    );
}

#[test]
fn truncated_sha1_is_dropped_and_macos_uuid_is_lowercased() {
    let i = map("sumologic_threat_macos");
    assert_eq!(i.file.sha1, None, "27-char sha1 is a sanitization artefact");
    assert_eq!(
        i.device.agent_uuid_raw.as_deref(),
        Some("37C120-1BA-51-9D8-E0346")
    );
    assert_eq!(
        i.device.agent_uuid.as_deref(),
        Some("37c120-1ba-51-9d8-e0346")
    );
    assert_eq!(i.device.os_type.as_deref(), Some("macos"));
}

#[test]
fn linux_agent_keeps_its_dashed_uuid() {
    let i = map("sekoia_threat4");
    assert_eq!(
        i.device.agent_uuid.as_deref(),
        Some("1f03f1fd-71b6-91e8-1790-ff46fbd57d08")
    );
    assert_eq!(i.device.os_type.as_deref(), Some("linux"));
    assert_eq!(
        i.file.sha1.as_deref(),
        Some("1111111111111111111111111111111111111111")
    );
    assert_eq!(i.file.sha256.as_deref(), Some(&*"2".repeat(64)));
    assert_eq!(i.device.ips, ["192.0.2.10", "192.0.2.2", "192.0.2.1"]);
    assert_eq!(
        i.device.group.as_deref(),
        Some("Docker"),
        "realtime group wins"
    );
    assert_eq!(i.mitigation_status.as_deref(), Some("marked_as_benign"));
    assert_eq!(i.mitigation_actions, ["kill:success", "quarantine:success"]);
    assert_eq!(i.file.name.as_deref(), Some("AppRun"));
    assert_eq!(i.file.size, Some(78));
}

#[test]
fn star_threats_are_fileless_without_a_hash() {
    for name in [
        "demisto_eventcollector_threats_0",
        "demisto_eventcollector_threats_1",
    ] {
        let i = map(name);
        assert!(i.is_fileless, "{name}");
        assert_eq!(i.file.sha1, None, "{name}: sha1 \"\" is no hash");
        assert_eq!(i.file.path, None, "{name}: filePath \"\" is no path");
        assert_eq!(i.initiated_by.as_deref(), Some("star_active"));
        assert_eq!(i.storyline.as_deref(), Some("123456"));
    }
    let named = map("demisto_eventcollector_threats_0");
    assert_eq!(
        named.threat_name.as_deref(),
        Some("cmd.exe (interactive session)")
    );
    assert_eq!(named.file.name, named.threat_name);
    let unnamed = map("demisto_eventcollector_threats_1");
    assert_eq!(
        (unnamed.threat_name, unnamed.file.name),
        (None, None),
        "threatName \"\""
    );
}

#[test]
fn updated_before_created_is_kept() {
    for name in ["sekoia_threat", "sekoia_threat5"] {
        let i = map(name);
        assert!(i.updated_at < i.created_at, "{name}");
    }
}

#[test]
fn mitre_techniques_come_from_indicator_tactics() {
    let i = map("sekoia_threat3");
    let ids: Vec<(&str, Option<&str>)> = i
        .mitre
        .iter()
        .map(|m| (m.id.as_str(), m.tactic.as_deref()))
        .collect();
    assert!(ids.contains(&("T1204.002", Some("Execution"))));
    assert!(ids.contains(&("T1547.001", Some("Persistence"))));
    assert!(ids.contains(&("T1547.001", Some("Privilege Escalation"))));
    assert_eq!(
        ids.iter().filter(|(id, _)| *id == "T1547.001").count(),
        2,
        "deduped per tactic"
    );
    // "T7" with a mangled link is no technique.
    assert!(map("sumologic_threat_macos").mitre.is_empty());
}

#[test]
fn elastic_sample_lists_its_ips_and_mitigations() {
    let i = map("elastic_test_pipeline_threat_line1");
    assert_eq!(
        i.device.ips,
        ["10.0.0.1", "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"]
    );
    assert_eq!(
        i.mitigation_actions,
        ["unquarantine:success", "kill:success"]
    );
    assert_eq!(i.classification.as_deref(), Some("Trojan"));
    assert_eq!(i.engines, ["SentinelOne Cloud"]);
}

#[test]
fn the_doc_example_maps_type_names_to_nothing() {
    let i = map("swimlane_get_threats");
    assert_eq!(i.external_id, "225494730938493804");
    assert_eq!(i.file.md5, None, "\"string\" is no md5");
    assert_eq!(i.file.size, None, "\"integer\" is no size");
    assert_eq!(i.file.path, None, "an object is no path");
    assert!(!i.is_fileless, "an object is no boolean");
    assert_eq!(i.engines, ["reputation", "pre_execution"]);
}

#[test]
fn list_envelopes_parse_with_their_cursors() {
    let page = parse_page(read("demisto_eventcollector_threats.json").as_bytes()).unwrap();
    assert_eq!(page.threats.len(), 2);
    assert_eq!(page.next_cursor, None, "the string \"null\" ends the walk");
    assert_eq!(page.total_items, Some(222));

    let page = parse_page(swimlane_body("swimlane_get_threats.json").as_bytes()).unwrap();
    assert_eq!(
        page.next_cursor.as_deref(),
        Some("YWdlbnRfaWQ6NTgwMjkzODE=")
    );
    assert_eq!(page.total_items, Some(580));
    assert_eq!(
        page.threats.len(),
        1,
        "`errors` next to `data` is tolerated"
    );

    for name in [
        "swimlane_get_threat_notes.json",
        "swimlane_get_threat_timeline.json",
    ] {
        let page: Page = parse_page(swimlane_body(name).as_bytes()).unwrap();
        assert_eq!(page.next_cursor, None, "{name}");
        assert!(!page.threats.is_empty(), "{name}");
    }

    let page = parse_page(read("demisto_threat_analysis_raw.json").as_bytes()).unwrap();
    assert_eq!(page.threats.len(), 1, "single-object envelope");
    assert_eq!((page.next_cursor, page.total_items), (None, None));
}

#[test]
fn error_envelopes_parse() {
    for (file, code, title) in [
        (
            "issue_error_400_invalid_identifier.json",
            4_000_020,
            "Invalid Identifier",
        ),
        (
            "issue_error_401_authentication_failed.json",
            4_010_010,
            "Authentication Failed",
        ),
        (
            "issue_error_403_insufficient_permissions.json",
            4_030_010,
            "Insufficient permissions",
        ),
        (
            "issue_error_500_internal_server_error.json",
            5_000_010,
            "Internal server error",
        ),
    ] {
        let body = read(file);
        let err = parse_error(body.as_bytes()).unwrap();
        assert_eq!(
            (err.code(), err.title()),
            (Some(code), Some(title)),
            "{file}"
        );
        match parse_page(body.as_bytes()) {
            Err(EnvelopeError::Api(e)) => assert_eq!(e, err),
            other => panic!("{file}: {other:?}"),
        }
    }
    assert_eq!(parse_error(read("sekoia_threat.json").as_bytes()), None);
}

#[test]
fn entities_of_a_threat_with_a_file_name_users_process_and_indicators() {
    use dossier_domain::context::UserRole;
    let e = dossier_domain::entities::of(&[map("sekoia_threat")]);
    let device = e.device.unwrap();
    assert_eq!(device.network_status.as_deref(), Some("connected"));
    assert_eq!(device.sources.incident_count, 1);
    let users: Vec<(&str, &[UserRole])> = e
        .users
        .iter()
        .map(|u| (u.name.as_str(), u.roles.as_slice()))
        .collect();
    assert_eq!(
        users,
        [
            ("host07.example.com\\testuser", &[UserRole::Process][..]),
            ("testuser", &[UserRole::LoggedIn][..]),
        ]
    );
    assert_eq!(e.files.len(), 1);
    assert!(e.files[0].sha1.is_some() && e.files[0].path.is_some());
    assert_eq!(
        e.processes[0].name.as_deref(),
        Some("FileZilla_3.53.0_win64_sponsored-setup.exe")
    );
    assert_eq!(e.indicators.len(), 3);
    assert_eq!(
        e.indicators[0].category.as_deref(),
        Some("Hiding/Stealthiness")
    );
    assert!(e.storylines.is_empty());
    // Indicators carry their techniques.
    let e = dossier_domain::entities::of(&[map("sekoia_threat3")]);
    assert!(e
        .indicators
        .iter()
        .any(|i| i.techniques.iter().any(|t| t == "T1204.002")));
}

#[test]
fn a_fileless_threat_shows_its_storyline_not_a_file() {
    let i = map("demisto_eventcollector_threats_0");
    assert_eq!(i.device.network_status.as_deref(), Some("disconnected"));
    let e = dossier_domain::entities::of(&[i]);
    assert!(e.files.is_empty(), "{:?}", e.files);
    assert_eq!(e.storylines[0].id, "123456");
}

#[test]
fn a_command_line_is_the_detected_process_started_by_its_originator() {
    let with_args = all_threats()
        .into_iter()
        .map(|(n, raw)| (n, map_threat(&raw).unwrap()))
        .find(|(_, i)| i.context.processes.iter().any(|p| p.command_line.is_some()))
        .expect("a sample with maliciousProcessArguments");
    let p = with_args
        .1
        .context
        .processes
        .iter()
        .find(|p| p.command_line.is_some())
        .unwrap();
    assert!(
        p.command_line
            .as_deref()
            .unwrap()
            .contains("OfficeTimeline.exe"),
        "{p:?}"
    );
    assert_eq!(p.name.as_deref(), Some("OfficeTimeline.exe"));
    assert_eq!(p.parent.as_deref(), Some("chrome.exe"), "{p:?}");
}
