//! Device details: operating systems, computer names, agent versions, UUIDs and addresses.

use rand::rngs::StdRng;
use rand::Rng;

use crate::catalog::{Os, DEPARTMENTS, LINUX_ROLES, SERVER_ROLES};

/// Returns `len` random characters from `alphabet`.
pub(crate) fn random_string(rng: &mut StdRng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

pub(crate) const HEX: &[u8] = b"0123456789abcdef";
const UPPER_ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";

pub(crate) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

pub(crate) fn windows_uuid(rng: &mut StdRng) -> String {
    random_string(rng, HEX, 32)
}

pub(crate) fn dashed_uuid(rng: &mut StdRng) -> String {
    let hex = random_string(rng, HEX, 32);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

pub(crate) fn mac_address(rng: &mut StdRng) -> String {
    let bytes: Vec<String> = (0..6).map(|_| format!("{:02x}", rng.gen::<u8>())).collect();
    bytes.join(":")
}

pub(crate) fn link_local(rng: &mut StdRng) -> String {
    format!(
        "fe80::{:x}:{:x}:{:x}:{:x}",
        rng.gen::<u16>(),
        rng.gen::<u16>(),
        rng.gen::<u16>(),
        rng.gen::<u16>()
    )
}

pub(crate) struct OsChoice {
    pub os: Os,
    pub machine_type: &'static str,
    pub os_name: &'static str,
    pub revision: &'static str,
}

pub(crate) fn choose_os(rng: &mut StdRng) -> OsChoice {
    let roll = rng.gen_range(0..100);
    let (os, machine_type) = match roll {
        0..=47 => (
            Os::Windows,
            if rng.gen_bool(0.55) {
                "laptop"
            } else {
                "desktop"
            },
        ),
        48..=59 => (Os::Windows, "server"),
        60..=74 => (
            Os::Mac,
            if rng.gen_bool(0.85) {
                "laptop"
            } else {
                "desktop"
            },
        ),
        75..=94 => (Os::Linux, "server"),
        _ => (Os::Linux, "desktop"),
    };
    let (os_name, revision) = match (os, machine_type) {
        (Os::Windows, "server") => *pick(
            rng,
            &[
                ("Windows Server 2019 Standard", "17763"),
                ("Windows Server 2022 Datacenter", "20348"),
                ("Windows Server 2016 Standard", "14393"),
            ],
        ),
        (Os::Windows, _) => *pick(
            rng,
            &[
                ("Windows 10 Pro", "19045"),
                ("Windows 11 Enterprise", "22631"),
                ("Windows 10 Enterprise", "19044"),
                ("Windows 11 Pro", "22621"),
            ],
        ),
        (Os::Mac, _) => *pick(
            rng,
            &[
                ("OS X", "12.5.1 (21G83)"),
                ("OS X", "13.6.1 (22G313)"),
                ("OS X", "14.2.1 (23C71)"),
            ],
        ),
        (Os::Linux, _) => *pick(
            rng,
            &[
                ("Linux", "Ubuntu 22.04.3 LTS 5.15.0-91-generic"),
                (
                    "Linux",
                    "CentOS release 7.8.2003 (Core) 3.10.0-1127.el7.x86_64",
                ),
                ("Linux", "Debian GNU/12 (bookworm) 6.1.0-29-amd64"),
                (
                    "Linux",
                    "Red Hat Enterprise Linux release 8.9 (Ootpa) 4.18.0-513.el8.x86_64",
                ),
                (
                    "Linux",
                    "Amazon Linux release 2 (Karoo) 5.10.205-195.807.amzn2.x86_64",
                ),
            ],
        ),
    };
    OsChoice {
        os,
        machine_type,
        os_name,
        revision,
    }
}

pub(crate) fn computer_name(rng: &mut StdRng, os: Os, machine_type: &str, first: &str) -> String {
    match (os, machine_type) {
        (Os::Windows, "server") => {
            format!("SRV-{}{:02}", pick(rng, SERVER_ROLES), rng.gen_range(1..40))
        }
        (Os::Windows, _) => match rng.gen_range(0..3) {
            0 => format!("DESKTOP-{}", random_string(rng, UPPER_ALNUM, 7)),
            1 => format!("LAPTOP-{}", random_string(rng, UPPER_ALNUM, 8)),
            _ => format!(
                "{}-{}-{:04}",
                pick(rng, DEPARTMENTS),
                if machine_type == "laptop" { "LT" } else { "WS" },
                rng.gen_range(1..5000)
            ),
        },
        (Os::Mac, _) => {
            let mut name = first.to_owned();
            if let Some(c) = name.get_mut(..1) {
                c.make_ascii_uppercase();
            }
            match rng.gen_range(0..3) {
                0 => format!("{name}s-MacBook-Pro"),
                1 => format!("{name}s-MacBook-Air"),
                _ => format!("C02{}", random_string(rng, UPPER_ALNUM, 9)),
            }
        }
        (Os::Linux, _) => match rng.gen_range(0..3) {
            0 => format!(
                "ip-10-{}-{}-{}",
                rng.gen_range(0..255),
                rng.gen_range(0..255),
                rng.gen_range(1..255)
            ),
            1 => format!(
                "{}-{:02}.prod.acme.internal",
                pick(rng, LINUX_ROLES),
                rng.gen_range(1..60)
            ),
            _ => format!("{}-{}", pick(rng, LINUX_ROLES), rng.gen_range(1..30)),
        },
    }
}

pub(crate) fn agent_version(rng: &mut StdRng, os: Os, old: bool) -> String {
    let (major, minor) = if old {
        (22, rng.gen_range(1..4))
    } else {
        (23 + rng.gen_range(0..2), rng.gen_range(1..5))
    };
    match os {
        Os::Windows => format!(
            "{major}.{minor}.{}.{}",
            rng.gen_range(1..7),
            rng.gen_range(100..500)
        ),
        Os::Mac => format!(
            "{major}.{minor}.{}.{}",
            rng.gen_range(1..4),
            rng.gen_range(1..9)
        ),
        Os::Linux => format!(
            "{major}.{minor}.{}.{}",
            rng.gen_range(1..3),
            rng.gen_range(1..30)
        ),
    }
}
