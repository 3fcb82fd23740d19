//! File families the catalogue instantiates, and the fileless detections.

use crate::catalog::{
    Os, BEHAVIORAL, CLOUD, DATA_FILES, PRE_EXECUTION, PRE_EXECUTION_SUSPICIOUS, REPUTATION,
};

/// A file family: name and directory patterns, how it is detected.
/// Patterns: `{user}` (the agent's user), `{rand}` (random lowercase token), `{n}` (number),
/// `{HEX}` (4 uppercase hex digits).
pub(crate) struct Family {
    pub os: Os,
    pub weight: u32,
    pub name: &'static str,
    pub dir: &'static str,
    /// `(fileExtension, fileExtensionType)`; macOS and Linux files mostly have none (null).
    pub extension: Option<(&'static str, &'static str)>,
    pub classification: &'static str,
    pub confidence: &'static str,
    /// Index in `ENGINES`.
    pub engine: usize,
    /// `(publisherName, certificateId)`, empty when unsigned.
    pub signer: (&'static str, &'static str),
    pub originator: &'static str,
    /// Indexes in `INDICATORS`.
    pub indicators: &'static [usize],
    /// File size range in bytes.
    pub size: (u64, u64),
}

macro_rules! family {
    ($os:ident, $w:expr, $name:expr, $dir:expr, $ext:expr, $class:expr, $conf:expr,
     $engine:expr, $signer:expr, $orig:expr, $ind:expr, $size:expr) => {
        Family {
            os: Os::$os,
            weight: $w,
            name: $name,
            dir: $dir,
            extension: $ext,
            classification: $class,
            confidence: $conf,
            engine: $engine,
            signer: $signer,
            originator: $orig,
            indicators: $ind,
            size: $size,
        }
    };
}

const EXE: Option<(&str, &str)> = Some(("EXE", "Executable"));
const DLL: Option<(&str, &str)> = Some(("DLL", "Executable"));
const UNSIGNED: (&str, &str) = ("", "");

#[rustfmt::skip]
pub(crate) const FAMILIES: &[Family] = &[
    family!(Windows, 12, "nsh{HEX}.tmp", r"\Device\HarddiskVolume3\Users\{user}\AppData\Local\Temp\nsr{HEX}.tmp",
        Some(("TMP", "Misc")), "Malware", "suspicious", PRE_EXECUTION_SUSPICIOUS, UNSIGNED,
        "{rand}_setup.exe", &[0, 1, 2], (200_000, 4_000_000)),
    family!(Windows, 10, "Invoice_{n}.exe", r"\Device\HarddiskVolume3\Users\{user}\Downloads",
        EXE, "Trojan", "malicious", CLOUD, UNSIGNED, "OUTLOOK.EXE", &[0, 3], (80_000, 900_000)),
    family!(Windows, 6, "mimikatz.exe", r"\Device\HarddiskVolume3\Users\{user}\Downloads\mimikatz_trunk\x64",
        EXE, "Infostealer", "malicious", PRE_EXECUTION, UNSIGNED, "explorer.exe", &[8, 0],
        (1_200_000, 1_400_000)),
    family!(Windows, 5, "tasksche.exe", r"\Device\HarddiskVolume3\ProgramData\{rand}",
        EXE, "Ransomware", "malicious", BEHAVIORAL, UNSIGNED, "{rand}.exe", &[7, 4, 3],
        (3_000_000, 3_600_000)),
    family!(Windows, 8, "{rand}.dll", r"\Device\HarddiskVolume3\Users\{user}\AppData\Roaming\{rand}",
        DLL, "Trojan", "malicious", PRE_EXECUTION, UNSIGNED, "rundll32.exe", &[0, 2, 3, 4],
        (150_000, 700_000)),
    family!(Windows, 6, "Report_{n}.docm", r"\Device\HarddiskVolume3\Users\{user}\Documents",
        Some(("DOCM", "Document")), "Malware", "malicious", DATA_FILES, UNSIGNED, "WINWORD.EXE",
        &[9, 10], (40_000, 300_000)),
    family!(Windows, 5, "powershell.exe", r"\Device\HarddiskVolume3\Windows\System32\WindowsPowerShell\v1.0",
        EXE, "Malware", "suspicious", BEHAVIORAL, ("Microsoft Windows", "Microsoft Windows"),
        "WINWORD.EXE", &[10, 5, 6], (440_000, 460_000)),
    family!(Windows, 5, "{rand}Setup.exe", r"\Device\HarddiskVolume3\Users\{user}\Downloads",
        EXE, "PUA", "suspicious", REPUTATION, ("Piriform Software Ltd", "Piriform Software Ltd"),
        "chrome.exe", &[], (20_000_000, 45_000_000)),
    family!(Windows, 4, "PsExec64.exe", r"\Device\HarddiskVolume3\Users\{user}\Tools\PSTools",
        EXE, "Hacktool", "suspicious", BEHAVIORAL, ("Microsoft Corporation", "Microsoft Corporation"),
        "cmd.exe", &[15, 14], (800_000, 840_000)),
    family!(Windows, 4, "AnyDesk.exe", r"\Device\HarddiskVolume3\Users\{user}\Downloads",
        EXE, "PUA", "suspicious", REPUTATION, ("philandro Software GmbH", "philandro Software GmbH"),
        "chrome.exe", &[], (3_500_000, 5_200_000)),
    family!(Windows, 3, "xmrig.exe", r"\Device\HarddiskVolume3\Users\{user}\AppData\Local\Temp\{rand}",
        EXE, "Miner", "malicious", CLOUD, UNSIGNED, "powershell.exe", &[13, 0],
        (5_000_000, 6_500_000)),
    family!(Windows, 4, "update_{rand}.js", r"\Device\HarddiskVolume3\Users\{user}\AppData\Local\Temp",
        Some(("JS", "Script")), "Malware", "malicious", DATA_FILES, UNSIGNED, "wscript.exe",
        &[6, 10], (3_000, 60_000)),
    family!(Mac, 5, "Installer", "/Users/{user}/Downloads/Player.app/Contents/MacOS",
        None, "PUA", "suspicious", REPUTATION, UNSIGNED, "launchd", &[], (300_000, 2_000_000)),
    family!(Mac, 4, "jamf", "/usr/local/jamf/bin",
        None, "Malware", "suspicious", BEHAVIORAL,
        ("JAMF Software", "<Type=DD/ID=483DWKW443/Subject=JAMF Software>"),
        "launchd", &[5], (17_000_000, 17_100_000)),
    family!(Mac, 4, ".{rand}", "/Users/{user}/Library/Application Support/.{rand}",
        None, "Trojan", "malicious", PRE_EXECUTION, UNSIGNED, "launchd", &[11, 0], (40_000, 900_000)),
    family!(Mac, 3, "osascript", "/usr/bin",
        None, "Infostealer", "suspicious", BEHAVIORAL,
        ("Software Signing", "<Type=Apple/Subject=Software Signing>"), "{rand}", &[8, 11],
        (50_000, 60_000)),
    family!(Mac, 2, "MacKeeper", "/Applications/MacKeeper.app/Contents/MacOS",
        None, "PUA", "suspicious", REPUTATION,
        ("Kromtech Alliance Corp.", "<Type=DD/ID=3DQBE9HS2N/Subject=Kromtech>"), "launchd", &[],
        (9_000_000, 12_000_000)),
    family!(Linux, 4, "eicar.com", "/home/{user}",
        None, "Malware", "malicious", PRE_EXECUTION, UNSIGNED, "scp", &[], (68, 68)),
    family!(Linux, 5, "kdevtmpfsi", "/tmp",
        None, "Miner", "malicious", CLOUD, UNSIGNED, "kinsing", &[13, 12], (2_400_000, 2_600_000)),
    family!(Linux, 4, "xmrig", "/var/tmp/.x",
        None, "Miner", "malicious", BEHAVIORAL, UNSIGNED, "bash", &[13], (5_000_000, 7_000_000)),
    family!(Linux, 5, ".{rand}", "/dev/shm",
        None, "Trojan", "malicious", PRE_EXECUTION, UNSIGNED, "sh", &[0, 12], (30_000, 400_000)),
    family!(Linux, 3, "libprocesshider.so", "/usr/local/lib",
        Some(("SO", "Executable")), "Malware", "malicious", PRE_EXECUTION, UNSIGNED,
        "ld-linux-x86-64.so.2", &[0], (15_000, 17_000)),
    family!(Linux, 3, "tsunami", "/tmp/.ICE-unix",
        None, "Backdoor", "malicious", CLOUD, UNSIGNED, "wget", &[12, 14], (60_000, 90_000)),
    family!(Linux, 4, "{rand}.sh", "/tmp",
        Some(("SH", "Script")), "Malware", "suspicious", BEHAVIORAL, UNSIGNED, "bash", &[12, 5],
        (500, 20_000)),
];

/// The real EICAR test file hashes (sha1, sha256, md5): the Linux `eicar.com` family uses them,
/// as the Swimlane lab capture does.
pub(crate) const EICAR: (&str, &str, &str) = (
    "3395856ce81f2b7382dee72602f798b642f14140",
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
    "44d88612fea8a8f36de82e1278abb02f",
);

/// Fileless detections (STAR custom rules, interactive sessions):
/// `(threatName, classification, indicators)`. Names may be empty, as in the demisto sample.
pub(crate) const FILELESS: &[(&str, &str, &[usize])] = &[
    ("cmd.exe (interactive session)", "Infostealer", &[6, 14]),
    ("powershell.exe (interactive session)", "Malware", &[10, 5]),
    ("", "Malware", &[6]),
    ("Suspicious LSASS access", "Infostealer", &[8]),
    ("wmic.exe (interactive session)", "Malware", &[15, 5]),
    ("", "Manual", &[]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ENGINES, INDICATORS};

    #[test]
    fn every_family_points_at_known_engines_and_indicators() {
        for f in FAMILIES {
            assert!(f.engine < ENGINES.len(), "{}", f.name);
            assert!(
                f.indicators.iter().all(|i| *i < INDICATORS.len()),
                "{}",
                f.name
            );
            assert!(f.size.0 <= f.size.1, "{}", f.name);
            assert_eq!(f.signer.0.is_empty(), f.signer.1.is_empty(), "{}", f.name);
        }
        for os in [Os::Windows, Os::Mac, Os::Linux] {
            assert!(FAMILIES.iter().any(|f| f.os == os));
        }
        assert!(FILELESS
            .iter()
            .all(|f| f.2.iter().all(|i| *i < INDICATORS.len())));
    }
}
