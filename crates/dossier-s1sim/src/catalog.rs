//! Static vocabulary of the generator: engines, MITRE indicators, file families, fileless
//! detections, names. Values follow the real samples in `testdata/sentinelone/`.

use serde_json::{json, Value};

/// Operating-system family of an agent (`agentOsType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Os {
    Windows,
    Mac,
    Linux,
}

impl Os {
    pub(crate) fn os_type(self) -> &'static str {
        match self {
            Os::Windows => "windows",
            Os::Mac => "macos",
            Os::Linux => "linux",
        }
    }
}

/// A detection engine: `detectionEngines[].key/title`, the legacy `engines[]` title, the
/// detection type and the `classificationSource` it usually comes with.
pub(crate) struct Engine {
    pub key: &'static str,
    pub title: &'static str,
    pub legacy: &'static str,
    pub detection_type: &'static str,
    pub source: &'static str,
}

pub(crate) const PRE_EXECUTION: usize = 0;
pub(crate) const PRE_EXECUTION_SUSPICIOUS: usize = 1;
pub(crate) const CLOUD: usize = 2;
pub(crate) const BEHAVIORAL: usize = 3;
pub(crate) const DATA_FILES: usize = 4;
pub(crate) const REPUTATION: usize = 5;
pub(crate) const MANUAL: usize = 6;

pub(crate) const ENGINES: &[Engine] = &[
    Engine {
        key: "pre_execution",
        title: "On-Write Static AI",
        legacy: "On-Write DFI",
        detection_type: "static",
        source: "Static",
    },
    Engine {
        key: "pre_execution_suspicious",
        title: "On-Write Static AI - Suspicious",
        legacy: "On-Write DFI - Suspicious",
        detection_type: "static",
        source: "Static",
    },
    Engine {
        key: "sentinelone_cloud",
        title: "SentinelOne Cloud",
        legacy: "SentinelOne Cloud",
        detection_type: "static",
        source: "Cloud",
    },
    Engine {
        key: "executables",
        title: "Behavioral AI",
        legacy: "DBT - Executables",
        detection_type: "dynamic",
        source: "Behavioral",
    },
    Engine {
        key: "data_files",
        title: "Documents, Scripts",
        legacy: "DBT - Data Files",
        detection_type: "dynamic",
        source: "Behavioral",
    },
    Engine {
        key: "reputation",
        title: "Reputation",
        legacy: "Reputation",
        detection_type: "static",
        source: "Cloud",
    },
    Engine {
        key: "manual",
        title: "Manual",
        legacy: "Manual",
        detection_type: "dynamic",
        source: "Engine",
    },
];

/// Returns the `indicators[]` entry number `index` (see `INDICATORS`).
pub(crate) fn indicator(index: usize) -> Value {
    let (category, description, id, tactics) = INDICATORS[index % INDICATORS.len()];
    let tactics: Vec<Value> = tactics
        .iter()
        .map(|(tactic, techniques)| {
            let techniques: Vec<Value> = techniques
                .iter()
                .map(|t| {
                    let link = format!(
                        "https://attack.mitre.org/techniques/{}/",
                        t.replace('.', "/")
                    );
                    json!({ "link": link, "name": t })
                })
                .collect();
            json!({ "name": tactic, "source": "MITRE", "techniques": techniques })
        })
        .collect();
    json!({ "category": category, "description": description, "ids": [id], "tactics": tactics })
}

type Tactics = &'static [(&'static str, &'static [&'static str])];

/// `(category, description, id, [(tactic, [technique])])`; static-engine indicators carry no
/// tactics, like the sekoia samples.
#[rustfmt::skip]
pub(crate) const INDICATORS: &[(&str, &str, u32, Tactics)] = &[
    ("Hiding/Stealthiness", "The majority of sections in this PE have high entropy, a sign of obfuscation or packing.", 29, &[]),
    ("General", "This binary imports functions used to raise kernel exceptions.", 24, &[]),
    ("Hiding/Stealthiness", "This binary may contain encrypted or compressed data as measured by high entropy of the sections (greater than 6.8).", 12, &[]),
    ("Injection", "Process injected code into another process", 81, &[("Defense Evasion", &["T1055"]), ("Privilege Escalation", &["T1055"])]),
    ("Persistence", "Created a scheduled task", 215, &[("Persistence", &["T1053.005"]), ("Execution", &["T1053.005"])]),
    ("Discovery", "Process performed system service discovery", 969, &[("System Service Discovery", &["T1007"])]),
    ("Evasion", "Indirect command was executed", 1191, &[("Defense Evasion", &["T1202"])]),
    ("Ransomware", "Detected ransomware behavior: mass file encryption", 34, &[("Impact", &["T1486"])]),
    ("InfoStealer", "Process accessed the memory of LSASS", 157, &[("Credential Access", &["T1003.001"])]),
    ("Exploitation", "Office application spawned a command interpreter", 402, &[("Execution", &["T1204.002", "T1059.003"])]),
    ("Post Exploitation", "Executed an encoded PowerShell command", 1051, &[("Execution", &["T1059.001"]), ("Defense Evasion", &["T1027"])]),
    ("Persistence", "Created a launch agent", 3110, &[("Persistence", &["T1543.001"])]),
    ("Persistence", "Modified the crontab of a user", 3301, &[("Persistence", &["T1053.003"])]),
    ("Malware", "Process is a known cryptocurrency miner", 2207, &[("Impact", &["T1496"])]),
    ("Discovery", "Enumerated network shares", 1299, &[("Discovery", &["T1135"])]),
    ("Lateral Movement", "Remote service was created", 732, &[("Lateral Movement", &["T1021.002"]), ("Execution", &["T1569.002"])]),
];

pub(crate) const FIRST_NAMES: &[&str] = &[
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "david",
    "elizabeth",
    "william",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "carlos",
    "maria",
    "wei",
    "yuki",
    "fatima",
    "ahmed",
    "olga",
    "lars",
    "priya",
    "arjun",
    "chloe",
    "lucas",
    "emma",
    "noah",
    "sofia",
    "mateo",
    "aisha",
    "kenji",
    "ines",
    "pierre",
    "anna",
    "omar",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "nguyen",
    "kim",
    "schmidt",
    "dubois",
    "rossi",
    "novak",
    "tanaka",
    "haddad",
    "silva",
    "berg",
];

pub(crate) const WORDS: &[&str] = &[
    "update", "helper", "sync", "agent", "service", "loader", "client", "runtime", "svc", "host",
    "driver", "setup", "patch", "tool", "launcher", "monitor", "cache", "bridge", "core", "media",
];

pub(crate) const SITE_NAMES: &[&str] = &["Default site", "Headquarters", "Linux Servers", "EMEA"];

pub(crate) const GROUP_NAMES: &[&str] = &[
    "Default Group",
    "Workstations",
    "Servers",
    "MacOS Clients",
    "Docker",
    "VIP",
    "Finance",
];

pub(crate) const DEPARTMENTS: &[&str] = &["FIN", "HR", "ENG", "OPS", "MKT", "SALES", "IT", "LEGAL"];

pub(crate) const SERVER_ROLES: &[&str] = &[
    "DC", "SQL", "FS", "EXCH", "WEB", "APP", "RDS", "PRINT", "BKP", "SCCM",
];

pub(crate) const LINUX_ROLES: &[&str] = &[
    "web",
    "db",
    "api",
    "worker",
    "k8s-node",
    "build-runner",
    "cache",
    "mq",
    "bastion",
    "etl",
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn indicators_have_the_real_shape() {
        let v = indicator(3);
        assert_eq!(v["category"], "Injection");
        assert_eq!(v["tactics"][0]["source"], "MITRE");
        assert_eq!(
            v["tactics"][0]["techniques"][0],
            json!({"link": "https://attack.mitre.org/techniques/T1055/", "name": "T1055"})
        );
        let sub = indicator(8);
        assert_eq!(
            sub["tactics"][0]["techniques"][0]["link"],
            "https://attack.mitre.org/techniques/T1003/001/"
        );
        assert_eq!(indicator(0)["tactics"], json!([]));
    }
}
