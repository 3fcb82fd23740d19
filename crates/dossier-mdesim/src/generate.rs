//! The seeded alert generator: which device sees which file when, with realistic reuse.
//!
//! Deterministic given the seed and the sequence of calls: one `StdRng` drives everything.
//!
//! Mix of generated alerts:
//! - 8 % from other Defender XDR services (Office 365, Identity), no device evidence: the
//!   `serviceSource` filter leaves them out;
//! - of the Defender for Endpoint alerts, by [`KINDS`] weight: files, malicious processes,
//!   script interpreters, and fileless behaviour (about a quarter, no hashes);
//! - a file alert comes back on the same device (25 %), is one of three outbreak files
//!   (10 %), is a configured shared file (5 %), or a file never seen before;
//! - 5 % of alerts happen on a device named after a configured shared host;
//! - servers sometimes get a Defender for Servers alert, whose `detectionSource` is a newer
//!   enum member.
//!
//! Alerts of one device on one day share an incident (`incidentId`), as Defender groups them.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::catalog::{
    Kind, Shape, COMMAND_LINES, FILE_NAMES, FOLDERS, INTERPRETERS, KINDS, OTHER_SERVICES,
    PLATFORMS, SERVER_KIND, USERS,
};
use crate::config::SimConfig;
use crate::ticks::{dotnet, format};

/// One onboarded device.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub mde_id: String,
    pub aad_id: Option<String>,
    pub name: String,
    pub platform: &'static str,
    pub version: &'static str,
    pub ip: String,
    pub group: &'static str,
    pub user: &'static str,
}

/// One file.
#[derive(Debug, Clone)]
pub(crate) struct File {
    pub name: String,
    pub folder: String,
    pub sha1: String,
    pub sha256: String,
    pub size: u64,
}

pub(crate) struct Generator {
    rng: StdRng,
    tenant_id: String,
    devices: Vec<Device>,
    /// Devices named after the configured shared hosts.
    shared_devices: Vec<Device>,
    shared_files: Vec<File>,
    outbreak_files: Vec<File>,
    /// Recent (device index, file) pairs that come back.
    recent: Vec<(usize, File)>,
    /// Incident of (device name, day).
    incidents: HashMap<(String, i64), u64>,
    next_incident: u64,
}

fn hex(rng: &mut StdRng, len: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(HEX[rng.gen_range(0..16)]))
        .collect()
}

fn guid(rng: &mut StdRng) -> String {
    let h = hex(rng, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn pick<'a, T>(rng: &mut StdRng, list: &'a [T]) -> &'a T {
    &list[rng.gen_range(0..list.len())]
}

fn pick_str(rng: &mut StdRng, list: &[&'static str]) -> &'static str {
    list[rng.gen_range(0..list.len())]
}

fn device(rng: &mut StdRng, index: usize, name: Option<&str>) -> Device {
    let total: u32 = PLATFORMS.iter().map(|p| p.2).sum();
    let mut roll = rng.gen_range(0..total);
    let (platform, version, _) = *PLATFORMS
        .iter()
        .find(|p| {
            let hit = roll < p.2;
            roll = roll.saturating_sub(p.2);
            hit
        })
        .unwrap_or(&PLATFORMS[0]);
    let generated = match platform {
        p if p.contains("Server") => format!(
            "srv-{}-{index:03}",
            pick(rng, &["sql", "app", "file", "dc", "web"])
        ),
        "Linux" => format!("ubuntu-web-{index:02}"),
        "macOS" => format!("macbook-{}", pick(rng, USERS)),
        _ => format!("desktop-{}", hex(rng, 7)),
    };
    Device {
        mde_id: hex(rng, 40),
        aad_id: rng.gen_bool(0.7).then(|| guid(rng)),
        name: name.map_or_else(|| format!("{generated}.contoso.local"), str::to_owned),
        platform,
        version,
        ip: format!(
            "10.{}.{}.{}",
            rng.gen_range(0..16),
            rng.gen_range(0..255),
            rng.gen_range(1..255)
        ),
        group: pick_str(
            rng,
            &["UnassignedGroup", "Workstations", "Servers", "Finance"],
        ),
        user: pick_str(rng, USERS),
    }
}

fn new_file(rng: &mut StdRng, user: &str) -> File {
    File {
        name: (*pick(rng, FILE_NAMES)).to_owned(),
        folder: pick(rng, FOLDERS).replace("{user}", user),
        sha1: hex(rng, 40),
        sha256: hex(rng, 64),
        size: rng.gen_range(4_096..8_000_000),
    }
}

impl Generator {
    pub(crate) fn new(config: &SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let devices = (0..config.devices.max(1))
            .map(|i| device(&mut rng, i, None))
            .collect();
        let shared_devices = config
            .shared_hosts
            .iter()
            .enumerate()
            .map(|(i, host)| device(&mut rng, i, Some(host)))
            .collect();
        let shared_files = config
            .shared_files
            .iter()
            .map(|(sha256, name)| File {
                name: name.clone(),
                folder: "C:\\Users\\Public\\Downloads".to_owned(),
                sha1: hex(&mut rng, 40),
                sha256: sha256.to_ascii_lowercase(),
                size: rng.gen_range(4_096..8_000_000),
            })
            .collect();
        let outbreak_files = (0..3).map(|_| new_file(&mut rng, "Public")).collect();
        let next_incident = rng.gen_range(1_000..90_000);
        Self {
            rng,
            tenant_id: config.tenant_id.clone(),
            devices,
            shared_devices,
            shared_files,
            outbreak_files,
            recent: Vec::new(),
            incidents: HashMap::new(),
            next_incident,
        }
    }

    pub(crate) fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// A new alert created at `created` (ticks): new, not yet updated.
    pub(crate) fn alert(&mut self, created: i64) -> Value {
        let id = format!("da{}_{}", dotnet(created), self.rng.gen::<i32>());
        if self.rng.gen_bool(0.08) {
            return self.other_service(&id, created);
        }
        let shared_host = !self.shared_devices.is_empty() && self.rng.gen_bool(0.05);
        let (index, dev) = if shared_host {
            let i = self.rng.gen_range(0..self.shared_devices.len());
            (usize::MAX - i, self.shared_devices[i].clone())
        } else {
            let i = self.rng.gen_range(0..self.devices.len());
            (i, self.devices[i].clone())
        };
        let server = dev.platform.contains("Server");
        let kind = if server && self.rng.gen_bool(0.15) {
            &SERVER_KIND
        } else {
            self.kind()
        };
        let file = match kind.shape {
            Shape::File | Shape::Process => Some(self.file_for(index, &dev)),
            Shape::Interpreter | Shape::Fileless => None,
        };
        let incident = self.incident(&dev.name, created);
        render(&Draft {
            id: &id,
            tenant: &self.tenant_id,
            incident,
            created,
            kind,
            device: &dev,
            file: file.as_ref(),
            command: pick_str(&mut self.rng, COMMAND_LINES),
            pid: self.rng.gen_range(1_000..30_000),
        })
    }

    fn kind(&mut self) -> &'static Kind {
        let total: u32 = KINDS.iter().map(|k| k.weight).sum();
        let mut roll = self.rng.gen_range(0..total);
        KINDS
            .iter()
            .find(|k| {
                let hit = roll < k.weight;
                roll = roll.saturating_sub(k.weight);
                hit
            })
            .unwrap_or(&KINDS[0])
    }

    fn file_for(&mut self, index: usize, dev: &Device) -> File {
        let roll = self.rng.gen_range(0..100);
        let file = if roll < 25 && !self.recent.is_empty() {
            // A recurrence: the same file again, on the device it was on.
            let (_, f) = pick(&mut self.rng, &self.recent).clone();
            return f;
        } else if roll < 35 {
            pick(&mut self.rng, &self.outbreak_files).clone()
        } else if roll < 40 && !self.shared_files.is_empty() {
            pick(&mut self.rng, &self.shared_files).clone()
        } else {
            new_file(&mut self.rng, dev.user)
        };
        if self.recent.len() >= 256 {
            let at = self.rng.gen_range(0..self.recent.len());
            self.recent.swap_remove(at);
        }
        self.recent.push((index, file.clone()));
        file
    }

    fn incident(&mut self, device: &str, created: i64) -> u64 {
        let day = created / (86_400 * 10_000_000);
        let next = &mut self.next_incident;
        *self
            .incidents
            .entry((device.to_owned(), day))
            .or_insert_with(|| {
                *next += 1;
                *next
            })
    }

    fn other_service(&mut self, id: &str, created: i64) -> Value {
        let (service, title, category, technique) = *pick(&mut self.rng, OTHER_SERVICES);
        self.next_incident += 1;
        let incident = self.next_incident.to_string();
        let user = *pick(&mut self.rng, USERS);
        let at = format(created);
        let mut alert = base(id, &self.tenant_id, &incident, created);
        alert["serviceSource"] = json!(service);
        alert["detectionSource"] = json!(service);
        alert["title"] = json!(title);
        alert["category"] = json!(category);
        alert["severity"] = json!("medium");
        alert["mitreTechniques"] = json!([technique]);
        alert["evidence"] = json!([user_evidence(&at, user)]);
        alert
    }
}

/// What one Defender for Endpoint alert is made of.
struct Draft<'a> {
    id: &'a str,
    tenant: &'a str,
    incident: u64,
    created: i64,
    kind: &'a Kind,
    device: &'a Device,
    file: Option<&'a File>,
    command: &'a str,
    pid: u32,
}

/// The fields every alert has, as in `graph_alerts_v2_list_docs.json`.
fn base(id: &str, tenant: &str, incident: &str, created: i64) -> Value {
    let at = format(created);
    // Activity starts a little before the alert is raised.
    let first = format(created - 1_500_000_000);
    json!({
        "@odata.type": "#microsoft.graph.security.alert",
        "id": id,
        "providerAlertId": id,
        "incidentId": incident,
        "status": "new",
        "severity": "medium",
        "classification": null,
        "determination": null,
        "serviceSource": "microsoftDefenderForEndpoint",
        "detectionSource": "microsoftDefenderForEndpoint",
        "productName": "Microsoft Defender for Endpoint",
        "detectorId": "7f1c3609-a3ff-40e2-995b-c01770161d68",
        "tenantId": tenant,
        "title": "",
        "description": "",
        "recommendedActions": "1. Examine the device timeline for related activity.\n2. Look for the same indicators on other devices.",
        "category": "",
        "assignedTo": null,
        "alertWebUrl": format!("https://security.microsoft.com/alerts/{id}?tid={tenant}"),
        "incidentWebUrl": format!("https://security.microsoft.com/incidents/{incident}?tid={tenant}"),
        "actorDisplayName": null,
        "threatDisplayName": null,
        "threatFamilyName": null,
        "mitreTechniques": [],
        "createdDateTime": at,
        "lastUpdateDateTime": at,
        "resolvedDateTime": null,
        "firstActivityDateTime": first,
        "lastActivityDateTime": at,
        "comments": [],
        "evidence": [],
        "systemTags": [],
        "alertPolicyId": null,
        "additionalData": null,
    })
}

fn render(d: &Draft<'_>) -> Value {
    let incident = d.incident.to_string();
    let mut alert = base(d.id, d.tenant, &incident, d.created);
    let k = d.kind;
    let at = format(d.created);
    alert["title"] = json!(k.title);
    alert["description"] = json!(k.description);
    alert["category"] = json!(k.category);
    alert["severity"] = json!(k.severity);
    alert["detectionSource"] = json!(k.detection_source);
    alert["threatDisplayName"] = json!(k.threat);
    alert["threatFamilyName"] = json!(k.family);
    alert["mitreTechniques"] = json!(k.mitre);
    // Antivirus blocks what it detects; behavioural detections remediate nothing by themselves.
    let remediation = if k.detection_source == "antivirus" || k.threat.is_some() {
        "prevented"
    } else {
        "none"
    };
    let dev = d.device;
    let mut evidence = vec![device_evidence(&at, dev), user_evidence(&at, dev.user)];
    match (k.shape, d.file) {
        (Shape::File, Some(f)) => {
            evidence.push(file_evidence(&at, &dev.mde_id, f, remediation));
        }
        (Shape::Process, Some(f)) => {
            let image = details(&f.name, &f.folder, Some(&f.sha1), Some(&f.sha256), f.size);
            evidence.push(process_evidence(&at, d, &image, remediation));
        }
        _ => {
            let (name, folder, sha1, sha256, size) = INTERPRETERS[0];
            let image = if k.shape == Shape::Interpreter {
                details(name, folder, Some(sha1), Some(sha256), size)
            } else {
                details(
                    "wmiprvse.exe",
                    "C:\\Windows\\System32\\wbem",
                    None,
                    None,
                    520_192,
                )
            };
            evidence.push(process_evidence(&at, d, &image, "none"));
        }
    }
    alert["evidence"] = Value::Array(evidence);
    alert
}

fn common(kind: &str, at: &str, remediation: &str, verdict: &str) -> Value {
    json!({
        "@odata.type": format!("#microsoft.graph.security.{kind}"),
        "createdDateTime": at,
        "verdict": verdict,
        "remediationStatus": remediation,
        "remediationStatusDetails": null,
        "roles": [],
        "detailedRoles": [],
        "tags": [],
    })
}

fn merge(mut into: Value, fields: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), fields) {
        a.extend(b);
    }
    into
}

fn device_evidence(at: &str, d: &Device) -> Value {
    merge(
        common("deviceEvidence", at, "none", "unknown"),
        json!({
            "firstSeenDateTime": at,
            "mdeDeviceId": d.mde_id,
            "azureAdDeviceId": d.aad_id,
            "deviceDnsName": d.name,
            "osPlatform": d.platform,
            "osBuild": 22_631,
            "version": d.version,
            "healthStatus": "active",
            "riskScore": "medium",
            "rbacGroupId": 0,
            "rbacGroupName": d.group,
            "onboardingStatus": "onboarded",
            "defenderAvStatus": "updated",
            "ipInterfaces": [d.ip, "127.0.0.1", "::1"],
            "loggedOnUsers": [{"accountName": d.user, "domainName": "CONTOSO"}],
            "detailedRoles": ["PrimaryDevice"],
            "vmMetadata": null,
        }),
    )
}

fn user_evidence(at: &str, user: &str) -> Value {
    merge(
        common("userEvidence", at, "none", "unknown"),
        json!({"userAccount": account(user)}),
    )
}

fn account(user: &str) -> Value {
    json!({
        "accountName": user,
        "domainName": "CONTOSO",
        "userSid": format!("S-1-5-21-1004336348-1177238915-682003330-{}", 1000 + user.len()),
        "azureAdUserId": null,
        "userPrincipalName": format!("{user}@contoso.com"),
        "displayName": null,
    })
}

fn details(name: &str, folder: &str, sha1: Option<&str>, sha256: Option<&str>, size: u64) -> Value {
    json!({
        "sha1": sha1,
        "sha256": sha256,
        "fileName": name,
        "filePath": folder,
        "fileSize": size,
        "filePublisher": null,
        "signer": null,
        "issuer": null,
    })
}

fn file_evidence(at: &str, device: &str, f: &File, remediation: &str) -> Value {
    merge(
        common("fileEvidence", at, remediation, "malicious"),
        json!({
            "detectionStatus": if remediation == "prevented" { "prevented" } else { "detected" },
            "mdeDeviceId": device,
            "fileDetails": details(&f.name, &f.folder, Some(&f.sha1), Some(&f.sha256), f.size),
        }),
    )
}

fn process_evidence(at: &str, d: &Draft<'_>, image: &Value, remediation: &str) -> Value {
    let command = if image["fileName"] == "powershell.exe" {
        d.command.to_owned()
    } else {
        format!("\"{}\"", image["fileName"].as_str().unwrap_or_default())
    };
    merge(
        common("processEvidence", at, remediation, "suspicious"),
        json!({
            "processId": d.pid,
            "parentProcessId": d.pid / 3 + 4,
            "processCommandLine": command,
            "processCreationDateTime": format(d.created - 20_000_000),
            "parentProcessCreationDateTime": format(d.created - 900_000_000),
            "detectionStatus": "detected",
            "mdeDeviceId": d.device.mde_id,
            "imageFile": image,
            "parentProcessImageFile": details("cmd.exe", "C:\\Windows\\System32", None, None, 323_584),
            "userAccount": account(d.device.user),
        }),
    )
}

/// Moves an alert one step along `new → inProgress → resolved` at `at` (ticks), as an analyst
/// in the portal would; returns false for a resolved alert, which stays as it is.
pub(crate) fn advance(alert: &mut Value, at: i64, rng: &mut StdRng) -> bool {
    let now = format(at);
    match alert["status"].as_str() {
        Some("new") => {
            alert["status"] = json!("inProgress");
            alert["assignedTo"] = json!(format!("{}@contoso.com", pick(rng, USERS)));
        }
        Some("inProgress") => {
            let (classification, determination) = *pick(
                rng,
                &[
                    ("truePositive", "malware"),
                    ("truePositive", "multiStagedAttack"),
                    ("falsePositive", "clean"),
                    ("informationalExpectedActivity", "securityTesting"),
                ],
            );
            alert["status"] = json!("resolved");
            alert["classification"] = json!(classification);
            alert["determination"] = json!(determination);
            alert["resolvedDateTime"] = json!(now);
        }
        _ => return false,
    }
    alert["lastUpdateDateTime"] = json!(now);
    true
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_alerts() {
        let config = SimConfig::new(9, 20);
        let (mut a, mut b) = (Generator::new(&config), Generator::new(&config));
        for i in 0..50 {
            assert_eq!(a.alert(i * 1_000_000), b.alert(i * 1_000_000));
        }
    }

    #[test]
    fn shared_hosts_and_files_are_used() {
        let mut config = SimConfig::new(3, 20);
        config.shared_hosts = vec!["shared-host.contoso.local".into()];
        config.shared_files = vec![("A".repeat(64), "shared.exe".into())];
        let mut g = Generator::new(&config);
        let alerts: Vec<String> = (0..2_000).map(|i| g.alert(i).to_string()).collect();
        let hosts = alerts
            .iter()
            .filter(|a| a.contains("shared-host.contoso.local"))
            .count();
        let files = alerts
            .iter()
            .filter(|a| a.contains(&"a".repeat(64)))
            .count();
        assert!((40..200).contains(&hosts), "{hosts}");
        assert!(files > 10, "{files}");
    }

    #[test]
    fn alerts_move_forward_until_resolved() {
        let mut g = Generator::new(&SimConfig::new(1, 5));
        let mut alert = g.alert(0);
        let mut rng = StdRng::seed_from_u64(1);
        assert!(advance(&mut alert, 10, &mut rng));
        assert_eq!(alert["status"], "inProgress");
        assert!(advance(&mut alert, 20, &mut rng));
        assert_eq!(alert["status"], "resolved");
        assert_eq!(alert["lastUpdateDateTime"], format(20));
        assert!(!advance(&mut alert, 30, &mut rng));
    }
}
