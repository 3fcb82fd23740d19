//! Every real alert in `tests/samples/` (a copy of the shared Defender samples, with their
//! README) maps to its reviewed snapshot, and every real error body is classified as the
//! operator needs it.

use dossier_defender::{failure, map_alert, ClientError};
use dossier_domain::vocabulary::{DeviceKind, Mitigation, VendorSeverity};
use dossier_source::FailureKind;
use serde::Deserialize;
use serde_json::value::RawValue;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/samples");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}/{name}")).unwrap()
}

/// Every alert of the samples as (snapshot name, raw text).
fn all_alerts() -> Vec<(String, Box<RawValue>)> {
    #[derive(Deserialize)]
    struct List {
        value: Vec<Box<RawValue>>,
    }
    let mut out = Vec::new();
    for file in [
        "graph_alerts_v2_list_docs",
        "demisto_mde_list_alerts_response",
    ] {
        let list: List = serde_json::from_str(&read(&format!("{file}.json"))).unwrap();
        for (i, alert) in list.value.into_iter().enumerate() {
            out.push((format!("{file}_{i}"), alert));
        }
    }
    for file in [
        "elastic_m365_alert_sample_event_original",
        "mde_legacy_alert_docs",
    ] {
        let raw = RawValue::from_string(read(&format!("{file}.json"))).unwrap();
        out.push((file.to_owned(), raw));
    }
    out
}

#[test]
fn every_sample_alert_maps_to_the_snapshot() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        let alerts = all_alerts();
        assert_eq!(alerts.len(), 6);
        for (name, raw) in alerts {
            let text = raw.get().to_owned();
            let mut incident = map_alert(raw).unwrap();
            assert_eq!(
                incident.raw, text,
                "{name}: the raw text is kept byte for byte"
            );
            incident.raw = String::new();
            insta::assert_json_snapshot!(name.as_str(), incident);
        }
    });
}

/// The docs sample, field by field against PRODUCT.md's "Producers" row.
#[test]
fn the_docs_alert_keys_on_its_device_and_file() {
    let (_, raw) = all_alerts().into_iter().next().unwrap();
    let i = map_alert(raw).unwrap();
    assert_eq!(i.external_id, "da637551227677560813_-961444813");
    assert_eq!(
        i.device.agent_uuid.as_deref(),
        Some("73e7e2de709dff64ef64b1d0c30e67fab63279db")
    );
    assert_eq!(i.device.name.as_deref(), Some("tempDns"));
    assert_eq!(i.device.kind, DeviceKind::Workstation);
    assert_eq!(
        i.file.sha256.as_deref(),
        Some("8963a19fb992ad9a76576c5638fd68292cffb9aaac29eb8285f9abf6196a7dec")
    );
    assert_eq!(
        i.file.sha1.as_deref(),
        Some("5f1e8acedc065031aad553b710838eb366cfee9a")
    );
    assert_eq!(
        i.file.path.as_deref(),
        Some("C:\\Program Files\\temp\\MsSense.exe")
    );
    assert_eq!(i.severity, Some(VendorSeverity::Low));
    assert_eq!(i.storyline.as_deref(), Some("28282"));
    assert_eq!(i.mitigation, Mitigation::NotMitigated);
    assert_eq!(i.engines, ["antivirus"]);
    assert_eq!(
        i.console_url.as_deref(),
        Some("https://security.microsoft.com/alerts/da637551227677560813_-961444813?tid=b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c")
    );
    assert_eq!(
        i.created_at.to_rfc3339(),
        "2021-04-27T12:19:27.721130500+00:00"
    );
}

/// Elastic's capture has only process evidence: PowerShell's image is the file.
#[test]
fn the_elastic_alert_keys_on_the_process_image() {
    let raw = RawValue::from_string(read("elastic_m365_alert_sample_event_original.json")).unwrap();
    let i = map_alert(raw).unwrap();
    assert_eq!(i.file.name.as_deref(), Some("powershell.exe"));
    assert_eq!(
        i.file.sha256.as_deref(),
        Some("d783ba6567faf10fdff2d0ea3864f6756862d6c733c7f4467283da81aedc3a80")
    );
    assert_eq!(i.device.ips, ["192.168.5.65", "fe80::cfe4:80b:615c:38fb"]);
    assert_eq!(i.device.os_type.as_deref(), Some("windows"));
    assert_eq!(
        i.threat_name.as_deref(),
        Some("Suspicious PowerShell command line")
    );
}

#[test]
fn the_real_entra_bodies_are_credentials_rejected_with_what_to_do() {
    let bad = ClientError::from_entra(
        401,
        read("entra_token_error_7000215_invalid_secret.json").as_bytes(),
    );
    let f = failure(&bad);
    assert_eq!(f.kind, FailureKind::CredentialsRejected);
    assert_eq!(
        f.reason,
        "client secret rejected (AADSTS7000215) — paste the secret's Value, not its Secret ID, \
         from Entra ID › App registrations › Certificates & secrets"
    );
    let expired = ClientError::from_entra(
        401,
        read("entra_token_error_7000222_expired_secret.json").as_bytes(),
    );
    let f = failure(&expired);
    assert_eq!(f.kind, FailureKind::CredentialsRejected);
    assert!(
        f.reason.starts_with(
            "client secret expired (AADSTS7000222) — create a new client secret in Entra ID › \
             App registrations › Certificates & secrets"
        ),
        "{}",
        f.reason
    );
}

#[test]
fn the_real_graph_bodies_are_consent_or_rejection() {
    let roles = ClientError::from_graph(403, read("graph_error_403_missing_roles.json").as_bytes());
    let f = failure(&roles);
    assert_eq!(f.kind, FailureKind::ConsentPending);
    assert!(
        f.reason
            .contains("grant the application permission SecurityAlert.Read.All"),
        "{}",
        f.reason
    );
    assert!(f.reason.contains("Grant admin consent"), "{}", f.reason);
    let missing = ClientError::from_graph(
        404,
        read("mde_error_resource_not_found_docs.json").as_bytes(),
    );
    assert_eq!(failure(&missing).kind, FailureKind::Other);
    assert!(
        failure(&missing)
            .reason
            .contains("ResourceNotFound: Machine 123123123 was not found"),
        "{}",
        failure(&missing).reason
    );
}

/// The story's entities from Graph's evidence: the process with its command line, parent and
/// user, the user, the file once (the process image is the alert's file), and the alert as
/// the indicator with its MITRE technique.
#[test]
fn the_docs_alert_names_its_process_user_and_indicator() {
    let (_, raw) = all_alerts().into_iter().next().unwrap();
    let e = dossier_domain::entities::of(&[map_alert(raw).unwrap()]);
    assert_eq!(e.device.unwrap().ips, ["1.1.1.1"]);
    assert_eq!(e.users.len(), 1);
    assert_eq!(e.users[0].name, "NT AUTHORITY\\SYSTEM");
    assert_eq!(e.processes.len(), 1);
    let p = &e.processes[0];
    assert_eq!(
        (
            p.name.as_deref(),
            p.command_line.as_deref(),
            p.parent.as_deref()
        ),
        (
            Some("MsSense.exe"),
            Some("\"MsSense.exe\""),
            Some("services.exe")
        )
    );
    assert_eq!(e.files.len(), 1, "{:?}", e.files);
    assert_eq!(e.files[0].signer.as_deref(), Some("Microsoft Corporation"));
    assert_eq!(e.indicators[0].category.as_deref(), Some("DefenseEvasion"));
    assert_eq!(e.indicators[0].techniques, ["T1564.001"]);
    assert_eq!(
        e.indicators[0].sources.incident_ids,
        ["da637551227677560813_-961444813"]
    );
}

#[test]
fn the_legacy_alert_names_its_user_and_process_rows() {
    let (_, raw) = all_alerts()
        .into_iter()
        .find(|(n, _)| n == "mde_legacy_alert_docs")
        .unwrap();
    let e = dossier_domain::entities::of(&[map_alert(raw).unwrap()]);
    assert_eq!(e.users[0].name, "DOMAIN\\name");
    assert_eq!(
        e.processes[0].command_line.as_deref(),
        Some("rundll32.exe  c:\\temp\\suspicious.dll,RepeatAfterMe")
    );
}
