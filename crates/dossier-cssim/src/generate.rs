//! The seeded alert generator: which host sees which file when, in the exact shape of the
//! Alerts API samples (`elastic_alert_*` in the source crate's `tests/samples/`).
//!
//! Deterministic given the seed and the sequence of calls: one `StdRng` drives everything.
//!
//! Mix (by share of alerts): 8 % identity (`idp`) alerts, which the source's `product:'epp'`
//! filter leaves out; of the endpoint alerts, 5 % fileless (a WMI/script detection with no
//! hash, correlated on `aggregate_id`), 25 % recurrences of a file on a host, 10 % outbreak
//! files on many hosts, the rest single detections; 5 % on a shared file and 5 % on a shared
//! host name when the configuration has them. Ids: `ldt` alerts are
//! `<cid>:ind:<aid>:<process>-<pattern>-<n>`, `ods` ones `<cid>:ods:<aid>:<32 hex>`.

use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::config::SimConfig;

/// Returns `len` hex digits drawn from a generator seeded with `seed`.
pub(crate) fn hex_of(seed: u64, len: usize) -> String {
    let mut rng = StdRng::seed_from_u64(seed);
    random_hex(&mut rng, len)
}

fn random_hex(rng: &mut StdRng, len: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    (0..len)
        .map(|_| char::from(HEX[rng.gen_range(0..16)]))
        .collect()
}

/// Formats a timestamp as the API does: RFC 3339 UTC with nine fractional digits.
pub(crate) fn nanos_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// One kind of detection: what the alert says and how severe it is.
struct Detection {
    name: &'static str,
    display_name: &'static str,
    description: &'static str,
    tactic: (&'static str, &'static str),
    technique: (&'static str, &'static str),
    scenario: &'static str,
    severity: u8,
    pattern_id: u32,
    /// `ldt` or `ods`.
    kind: &'static str,
    /// No file: a script or WMI detection.
    fileless: bool,
}

/// The detections alerts are drawn from: CrowdStrike's own ML tactic ids (`CSTA0004`,
/// `CST0000`, `CST0007`, as in the samples) and MITRE ones.
const DETECTIONS: &[Detection] = &[
    Detection { name: "PrewittPupAdwareSensorDetect-Lowest", display_name: "PrewittPupAdwareSensorDetect-Lowest", description: "This file meets the Adware/PUP Anti-malware ML algorithm's lowest-confidence threshold.", tactic: ("Machine Learning", "CSTA0004"), technique: ("Adware/PUP", "CST0000"), scenario: "NGAV", severity: 30, pattern_id: 5761, kind: "ldt", fileless: false },
    Detection { name: "OnDemandScanMLFileAnalysisMedium", display_name: "OnDemandScanMLFileAnalysisMedium", description: "An on-demand scan found a file that meets the ML algorithm's medium-confidence threshold.", tactic: ("Machine Learning", "CSTA0004"), technique: ("Sensor-based ML", "CST0007"), scenario: "NGAV", severity: 50, pattern_id: 4005, kind: "ods", fileless: false },
    Detection { name: "CredentialDumpingLsass", display_name: "Credential dumping via LSASS access", description: "A process accessed LSASS memory in a way consistent with credential theft.", tactic: ("Credential Access", "TA0006"), technique: ("OS Credential Dumping: LSASS Memory", "T1003.001"), scenario: "credential_theft", severity: 90, pattern_id: 10197, kind: "ldt", fileless: false },
    Detection { name: "RansomwareFileEncryption", display_name: "Ransomware file encryption", description: "A process encrypted many user files in a short time.", tactic: ("Impact", "TA0040"), technique: ("Data Encrypted for Impact", "T1486"), scenario: "ransomware", severity: 95, pattern_id: 10512, kind: "ldt", fileless: false },
    Detection { name: "VulnerableDriverWritten", display_name: "Vulnerable driver written to disk", description: "A process has written a kernel driver to disk that CrowdStrike analysts have deemed vulnerable.", tactic: ("Privilege Escalation", "TA0004"), technique: ("Exploitation for Privilege Escalation", "T1068"), scenario: "evade_detection", severity: 70, pattern_id: 10305, kind: "ldt", fileless: false },
    Detection { name: "RemoteServiceCreationSmb", display_name: "Remote service created over SMB", description: "A service was created remotely, consistent with lateral movement.", tactic: ("Lateral Movement", "TA0008"), technique: ("SMB/Windows Admin Shares", "T1021.002"), scenario: "lateral_movement", severity: 60, pattern_id: 10088, kind: "ldt", fileless: false },
    Detection { name: "WmiScriptExecution", display_name: "Malicious script run through WMI", description: "A WMI consumer ran an encoded script with no file on disk.", tactic: ("Execution", "TA0002"), technique: ("Windows Management Instrumentation", "T1047"), scenario: "suspicious_activity", severity: 70, pattern_id: 10150, kind: "ldt", fileless: true },
    Detection { name: "SuspiciousActivityInfo", display_name: "Suspicious discovery commands", description: "A process ran several discovery commands in a row.", tactic: ("Discovery", "TA0007"), technique: ("System Information Discovery", "T1082"), scenario: "suspicious_activity", severity: 15, pattern_id: 10033, kind: "ldt", fileless: false },
];

/// A simulated host (sensor).
#[derive(Clone)]
pub(crate) struct Host {
    pub device_id: String,
    pub hostname: String,
    platform: &'static str,
    os_version: &'static str,
    product_type_desc: &'static str,
    local_ip: String,
    external_ip: String,
    site: &'static str,
    domain: &'static str,
}

#[derive(Clone)]
struct File {
    sha256: String,
    md5: String,
    name: String,
}

/// The generator's state.
pub(crate) struct Generator {
    rng: StdRng,
    cid: String,
    console: String,
    hosts: Vec<Host>,
    shared_hosts: Vec<Host>,
    files: Vec<File>,
    shared_files: Vec<File>,
    outbreaks: Vec<usize>,
    /// (host, file) pairs seen, for recurrences.
    seen: Vec<(usize, usize)>,
    sequence: u64,
}

const SITES: &[&str] = &[
    "Default-First-Site-Name",
    "HQ-Paris",
    "AP-IN-Chakan-SIL",
    "US-East",
];
const DOMAINS: &[&str] = &["CORP.LOCAL", "admin.example.com", "ABC.LOCAL"];
const EXE: &[&str] = &[
    "setup.exe",
    "invoice_viewer.exe",
    "keygen.exe",
    "update.exe",
    "svch0st.exe",
    "tool.exe",
    "driver_installer.exe",
    "7zsfx.exe",
];

impl Generator {
    pub(crate) fn new(config: &SimConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let hosts = (0..config.hosts.max(1))
            .map(|i| make_host(&mut rng, format!("HOST-{i:04}")))
            .collect();
        let shared_hosts = config
            .shared_hosts
            .iter()
            .map(|name| make_host(&mut rng, name.clone()))
            .collect();
        let files: Vec<File> = (0..200)
            .map(|i| File {
                sha256: random_hex(&mut rng, 64),
                md5: random_hex(&mut rng, 32),
                name: format!("{}-{i}", EXE[i % EXE.len()]),
            })
            .collect();
        let shared_files = config
            .shared_files
            .iter()
            .map(|(sha256, name)| File {
                sha256: sha256.to_ascii_lowercase(),
                md5: random_hex(&mut rng, 32),
                name: name.clone(),
            })
            .collect();
        let console = match config.region.as_str() {
            "us-1" => "falcon.crowdstrike.com".to_owned(),
            "us-gov-1" => "falcon.laggar.gcw.crowdstrike.com".to_owned(),
            other => format!("falcon.{other}.crowdstrike.com"),
        };
        Self {
            outbreaks: (0..3).map(|_| rng.gen_range(0..files.len())).collect(),
            rng,
            cid: config.cid.clone(),
            console,
            hosts,
            shared_hosts,
            files,
            shared_files,
            seen: Vec::new(),
            sequence: 0,
        }
    }

    pub(crate) fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// One new alert created at `at` (`created_timestamp = updated_timestamp`).
    pub(crate) fn alert(&mut self, at: DateTime<Utc>) -> Value {
        self.sequence += 1;
        if self.rng.gen_bool(0.08) {
            return self.identity_alert(at);
        }
        let shared_host = !self.shared_hosts.is_empty() && self.rng.gen_bool(0.05);
        let host = if shared_host {
            self.shared_hosts[self.rng.gen_range(0..self.shared_hosts.len())].clone()
        } else {
            // Skewed towards the first hosts: some devices are noisier than others.
            // (the lower of two draws: hosts early in the list come up more often).
            let n = self.hosts.len();
            let i = self.rng.gen_range(0..n).min(self.rng.gen_range(0..n));
            self.hosts[i].clone()
        };
        let (file, detection) = self.pick(&host, shared_host);
        self.endpoint_alert(at, &host, file.as_ref(), detection)
    }

    /// Which file (none for a fileless detection) and detection the alert is about.
    fn pick(&mut self, host: &Host, shared_host: bool) -> (Option<File>, &'static Detection) {
        let roll = self.rng.gen_range(0..100u32);
        if roll < 5 {
            let fileless: Vec<&Detection> = DETECTIONS.iter().filter(|d| d.fileless).collect();
            return (None, fileless[self.rng.gen_range(0..fileless.len())]);
        }
        let with_file: Vec<&'static Detection> =
            DETECTIONS.iter().filter(|d| !d.fileless).collect();
        let detection = with_file[self.rng.gen_range(0..with_file.len())];
        if !self.shared_files.is_empty() && roll < 10 {
            let f = self.shared_files[self.rng.gen_range(0..self.shared_files.len())].clone();
            return (Some(f), detection);
        }
        let host_index = self
            .hosts
            .iter()
            .position(|h| h.device_id == host.device_id);
        let file = match (roll, host_index) {
            (10..35, Some(h)) if !shared_host => {
                // A recurrence: a file this host had before, when there is one.
                let before: Vec<usize> = self
                    .seen
                    .iter()
                    .filter(|(sh, _)| *sh == h)
                    .map(|(_, f)| *f)
                    .collect();
                if before.is_empty() {
                    self.rng.gen_range(0..self.files.len())
                } else {
                    before[self.rng.gen_range(0..before.len())]
                }
            }
            (35..45, _) => self.outbreaks[self.rng.gen_range(0..self.outbreaks.len())],
            _ => self.rng.gen_range(0..self.files.len()),
        };
        if let Some(h) = host_index {
            if self.seen.len() < 100_000 {
                self.seen.push((h, file));
            }
        }
        (Some(self.files[file].clone()), detection)
    }

    fn endpoint_alert(
        &mut self,
        at: DateTime<Utc>,
        host: &Host,
        file: Option<&File>,
        d: &Detection,
    ) -> Value {
        let aid = &host.device_id;
        let process_id = self.rng.gen_range(100_000_000_000u64..999_999_999_999);
        let tree_id = self.rng.gen_range(100_000_000u64..999_999_999_999);
        let (kind_id, composite_id) = if d.kind == "ods" {
            let event = random_hex(&mut self.rng, 32);
            (
                format!("ods:{aid}:{event}"),
                format!("{}:ods:{aid}:{event}", self.cid),
            )
        } else {
            let tail = format!("{process_id}-{}-{}", d.pattern_id, self.sequence);
            (
                format!("ind:{aid}:{tail}"),
                format!("{}:ind:{aid}:{tail}", self.cid),
            )
        };
        let (sha256, md5, filename) = match file {
            Some(f) => (f.sha256.clone(), f.md5.clone(), f.name.clone()),
            None => (String::new(), String::new(), "wmiprvse.exe".to_owned()),
        };
        let blocked = d.severity >= 60 && self.rng.gen_bool(0.6);
        let quarantined = blocked && file.is_some() && self.rng.gen_bool(0.7);
        let user = format!("user{}", self.rng.gen_range(1..400));
        let stamp = nanos_text(at);
        let filepath = format!("\\Device\\HarddiskVolume3\\Users\\{user}\\Downloads\\{filename}");
        let mut alert = json!({
            "agent_id": aid,
            "aggregate_id": format!("aggind:{aid}:{tree_id}"),
            "alleged_filetype": "exe",
            "cid": self.cid,
            "cmdline": format!("\"C:\\Users\\{user}\\Downloads\\{filename}\""),
            "composite_id": composite_id,
            "confidence": self.rng.gen_range(10..=100),
            "context_timestamp": stamp,
            "control_graph_id": format!("ctg:{aid}:{tree_id}"),
            "crawled_timestamp": stamp,
            "created_timestamp": stamp,
            "data_domains": ["Endpoint"],
            "description": d.description,
            "device": device_json(host, &self.cid, at),
            "display_name": d.display_name,
            "falcon_host_link": format!("https://{}/activity-v2/detections/{composite_id}?_cid={}", self.console, self.cid),
            "filename": filename,
            "filepath": filepath,
            "id": kind_id,
            "indicator_id": format!("ind:{aid}:{process_id}-{}-{}", d.pattern_id, self.sequence),
            "local_process_id": self.rng.gen_range(100..65_000).to_string(),
            "logon_domain": host.domain.split('.').next().unwrap_or("CORP"),
            "md5": md5,
            "name": d.name,
            "objective": "Falcon Detection Method",
            "parent_details": {
                "cmdline": "C:\\WINDOWS\\Explorer.EXE",
                "filename": "explorer.exe",
                "filepath": "\\Device\\HarddiskVolume3\\Windows\\explorer.exe",
                "process_graph_id": format!("pid:{aid}:{}", process_id - 7),
                "process_id": (process_id - 7).to_string(),
                "user_name": user,
            },
            "parent_process_id": (process_id - 7).to_string(),
            "pattern_disposition": if quarantined { 2176 } else if blocked { 2048 } else { 0 },
            "pattern_disposition_description": if quarantined {
                "Prevention/Quarantine, process was blocked from execution and quarantine was attempted."
            } else if blocked {
                "Prevention, process was blocked from execution."
            } else {
                "Detection, standard detection."
            },
            "pattern_disposition_details": disposition(blocked, quarantined),
            "pattern_id": d.pattern_id,
            "platform": host.platform,
            "process_id": process_id.to_string(),
            "process_start_time": at.timestamp().to_string(),
            "product": "epp",
            "scenario": d.scenario,
            "severity": d.severity,
            "severity_name": severity_name(d.severity),
            "sha1": "0000000000000000000000000000000000000000",
            "sha256": sha256,
            "show_in_ui": true,
            "source_products": ["Falcon Insight"],
            "source_vendors": ["CrowdStrike"],
            "status": "new",
            "tactic": d.tactic.0,
            "tactic_id": d.tactic.1,
            "technique": d.technique.0,
            "technique_id": d.technique.1,
            "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "tree_id": tree_id.to_string(),
            "tree_root": process_id.to_string(),
            "triggering_process_graph_id": format!("pid:{aid}:{process_id}"),
            "type": d.kind,
            "updated_timestamp": stamp,
            "user_id": format!("S-1-5-21-1909377054-3469629671-4104191496-{}", 1000 + process_id % 9000),
            "user_name": user,
        });
        // Like sample 1, some alerts carry the number alone.
        if self.rng.gen_bool(0.2) {
            if let Some(a) = alert.as_object_mut() {
                a.remove("severity_name");
            }
        }
        alert
    }

    /// An identity alert like sample 2: no `device`, endpoints named by sensor id.
    fn identity_alert(&mut self, at: DateTime<Utc>) -> Value {
        let source = self.hosts[self.rng.gen_range(0..self.hosts.len())].clone();
        let target = self.hosts[self.rng.gen_range(0..self.hosts.len())].clone();
        let event = format!(
            "{:08X}-0F17-412C-8105-{:012X}",
            self.rng.gen::<u32>(),
            self.sequence
        );
        let composite_id = format!("{}:ind:{}:{event}", self.cid, self.cid);
        let stamp = nanos_text(at);
        json!({
            "agent_id": source.device_id,
            "aggregate_id": format!("aggind:{}:{event}", self.cid),
            "cid": self.cid,
            "composite_id": composite_id,
            "confidence": 80,
            "context_timestamp": stamp,
            "crawled_timestamp": stamp,
            "created_timestamp": stamp,
            "data_domains": ["Identity"],
            "description": "A user denied a policy identity verification request",
            "display_name": "Identity verification denied",
            "falcon_host_link": format!("https://{}/identity-protection/detections/{composite_id}?_cid={}", self.console, self.cid),
            "id": format!("ind:{}:{event}", self.cid),
            "name": "IdpPolicyIdentityVerificationDenied",
            "objective": "Gain Access",
            "pattern_id": 51143,
            "product": "idp",
            "scenario": "suspicious_activity",
            "severity": 79,
            "severity_name": "High",
            "show_in_ui": true,
            "source_endpoint_host_name": source.hostname,
            "source_endpoint_sensor_id": source.device_id,
            "source_products": ["Falcon Identity Protection"],
            "source_vendors": ["CrowdStrike"],
            "status": "new",
            "tactic": "Credential Access",
            "tactic_id": "TA0006",
            "technique": "Brute Force",
            "technique_id": "T1110",
            "target_endpoint_host_name": target.hostname,
            "target_endpoint_sensor_id": target.device_id,
            "timestamp": at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "type": "idp-user-endpoint-app-info",
            "updated_timestamp": stamp,
            "user_name": format!("user{}", self.rng.gen_range(1..400)),
        })
    }
}

fn make_host(rng: &mut StdRng, hostname: String) -> Host {
    let (platform, os_version) = match rng.gen_range(0..100) {
        0..70 => (
            "Windows",
            if rng.gen_bool(0.5) {
                "Windows 11"
            } else {
                "Windows 10"
            },
        ),
        70..85 => ("Mac", "Sonoma (14)"),
        _ => ("Linux", "Ubuntu 22.04"),
    };
    let product_type_desc = match rng.gen_range(0..100) {
        0..80 => "Workstation",
        80..95 => "Server",
        _ => "Domain Controller",
    };
    Host {
        device_id: random_hex(rng, 32),
        hostname,
        platform,
        os_version,
        product_type_desc,
        local_ip: format!(
            "10.{}.{}.{}",
            rng.gen_range(0..255),
            rng.gen_range(0..255),
            rng.gen_range(1..255)
        ),
        external_ip: format!("81.2.69.{}", rng.gen_range(1..255)),
        site: SITES[rng.gen_range(0..SITES.len())],
        domain: DOMAINS[rng.gen_range(0..DOMAINS.len())],
    }
}

fn device_json(h: &Host, cid: &str, at: DateTime<Utc>) -> Value {
    let seen = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    json!({
        "agent_load_flags": "0",
        "agent_local_time": at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "agent_version": "7.15.18513.0",
        "cid": cid,
        "config_id_base": "65994763",
        "config_id_build": "18513",
        "config_id_platform": "3",
        "device_id": h.device_id,
        "external_ip": h.external_ip,
        "first_seen": "2023-04-07T09:36:36Z",
        "groups": [],
        "hostinfo": {"domain": h.domain},
        "hostname": h.hostname,
        "last_seen": seen,
        "local_ip": h.local_ip,
        "machine_domain": h.domain,
        "major_version": "10",
        "minor_version": "0",
        "modified_timestamp": seen,
        "os_version": h.os_version,
        "platform_id": "0",
        "platform_name": h.platform,
        "pod_labels": null,
        "product_type": if h.product_type_desc == "Workstation" { "1" } else { "3" },
        "product_type_desc": h.product_type_desc,
        "site_name": h.site,
        "status": "normal",
    })
}

fn disposition(blocked: bool, quarantined: bool) -> Value {
    json!({
        "blocking_unsupported_or_disabled": false, "bootup_safeguard_enabled": false,
        "critical_process_disabled": false, "detect": !blocked, "fs_operation_blocked": false,
        "handle_operation_downgraded": false, "inddet_mask": false, "indicator": false,
        "kill_action_failed": false, "kill_parent": false, "kill_process": false,
        "kill_subprocess": false, "operation_blocked": false, "policy_disabled": false,
        "process_blocked": blocked, "quarantine_file": quarantined, "quarantine_machine": false,
        "registry_operation_blocked": false, "rooting": false, "sensor_only": false,
        "suspend_parent": false, "suspend_process": false,
    })
}

/// The name of a severity, per falcon-mcp's bands (PRODUCERS.md §2.4).
pub(crate) fn severity_name(n: u8) -> &'static str {
    match n {
        0..20 => "Informational",
        20..40 => "Low",
        40..60 => "Medium",
        60..80 => "High",
        _ => "Critical",
    }
}
