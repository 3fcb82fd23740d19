//! The entities of a story: its device, users, files, processes, storylines and indicators,
//! gathered over all of its incidents, each saying which incidents it comes from.
//!
//! This is the one place the gathering lives; the store calls [`of`] in its pass over a story's
//! incidents, the API and the story page show the result. Entities are listed in the order
//! they first appear in story order, and an entity seen by several incidents is listed once:
//!
//! - a file by its SHA-256, else SHA-1, else MD5, else path (letter case ignored), its hashes,
//!   signer and path filled from whichever incident gives them. A fileless incident's "file" is
//!   no file (SentinelOne fills it with the threat's name), so it gives none: its storyline
//!   and its process stand for it;
//! - a user by name (letter case ignored), with every role it took;
//! - a process by name and command line;
//! - an indicator by category and description.
//!
//! Each entity keeps how many incidents name it and the vendor ids of the first
//! [`MAX_IDS`] of them, so a story of a thousand incidents stays small.

use serde::{Deserialize, Serialize};

use crate::context::{known_text, UserRole};
use crate::incident::{FileInfo, Incident};

/// The vendor ids an entity keeps at most; its count goes on.
pub const MAX_IDS: usize = 20;

/// Which incidents an entity comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// How many of the story's incidents name it.
    pub incident_count: u32,
    /// The vendor ids of the first of them, in story order (at most [`MAX_IDS`]).
    pub incident_ids: Vec<String>,
}

impl Sources {
    fn add(&mut self, id: &str) {
        if self.incident_ids.last().is_some_and(|last| last == id) {
            return;
        }
        self.incident_count = self.incident_count.saturating_add(1);
        if self.incident_ids.len() < MAX_IDS {
            self.incident_ids.push(id.to_owned());
        }
    }
}

/// The story's device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntity {
    pub name: Option<String>,
    pub agent_uuid: Option<String>,
    pub os: Option<String>,
    /// The latest network state a producer gave (`connected`, `disconnected`, …).
    pub network_status: Option<String>,
    /// Every address any incident gave, in the order first seen.
    pub ips: Vec<String>,
    #[serde(flatten)]
    pub sources: Sources,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEntity {
    pub name: String,
    /// How the user takes part, each once, in the order first seen.
    pub roles: Vec<UserRole>,
    #[serde(flatten)]
    pub sources: Sources,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntity {
    pub name: Option<String>,
    pub path: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub signer: Option<String>,
    #[serde(flatten)]
    pub sources: Sources,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEntity {
    pub name: Option<String>,
    pub command_line: Option<String>,
    pub parent: Option<String>,
    pub user: Option<String>,
    pub path: Option<String>,
    pub sha256: Option<String>,
    #[serde(flatten)]
    pub sources: Sources,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorylineEntity {
    pub id: String,
    #[serde(flatten)]
    pub sources: Sources,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndicatorEntity {
    pub description: Option<String>,
    pub category: Option<String>,
    pub techniques: Vec<String>,
    #[serde(flatten)]
    pub sources: Sources,
}

/// Everything a story's incidents name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoryEntities {
    pub device: Option<DeviceEntity>,
    pub users: Vec<UserEntity>,
    pub files: Vec<FileEntity>,
    pub processes: Vec<ProcessEntity>,
    /// The storylines of fileless incidents, which stand for their file.
    pub storylines: Vec<StorylineEntity>,
    pub indicators: Vec<IndicatorEntity>,
}

/// Gathers the entities of a story's incidents, given in story order.
#[must_use]
pub fn of(incidents: &[Incident]) -> StoryEntities {
    let mut out = StoryEntities::default();
    for i in incidents {
        let id = i.external_id.as_str();
        add_device(&mut out, i);
        for u in &i.context.users {
            let Some(name) = known_text(Some(&u.name)) else {
                continue;
            };
            let at = find_or_push(
                &mut out.users,
                |e| e.name.eq_ignore_ascii_case(&name),
                || UserEntity {
                    name: name.clone(),
                    roles: Vec::new(),
                    sources: Sources::default(),
                },
            );
            if !at.roles.contains(&u.role) {
                at.roles.push(u.role);
            }
            at.sources.add(id);
        }
        let main = (!i.is_fileless).then_some(&i.file);
        for f in main.into_iter().chain(&i.context.files) {
            add_file(&mut out.files, f, id);
        }
        for p in &i.context.processes {
            let (name, cmd) = (
                known_text(p.name.as_deref()),
                known_text(p.command_line.as_deref()),
            );
            if name.is_none() && cmd.is_none() {
                continue;
            }
            let at = find_or_push(
                &mut out.processes,
                |e| e.name == name && e.command_line == cmd,
                || ProcessEntity {
                    name: name.clone(),
                    command_line: cmd.clone(),
                    ..ProcessEntity::default()
                },
            );
            fill(&mut at.parent, p.parent.as_deref());
            fill(&mut at.user, p.user.as_deref());
            fill(&mut at.path, p.path.as_deref());
            fill(&mut at.sha256, p.sha256.as_deref());
            at.sources.add(id);
        }
        if i.is_fileless {
            if let Some(s) = known_text(i.storyline.as_deref()) {
                let at = find_or_push(
                    &mut out.storylines,
                    |e| e.id == s,
                    || StorylineEntity {
                        id: s.clone(),
                        sources: Sources::default(),
                    },
                );
                at.sources.add(id);
            }
        }
        for ind in &i.context.indicators {
            let (d, c) = (
                known_text(ind.description.as_deref()),
                known_text(ind.category.as_deref()),
            );
            if d.is_none() && c.is_none() && ind.techniques.is_empty() {
                continue;
            }
            let at = find_or_push(
                &mut out.indicators,
                |e| e.description == d && e.category == c,
                || IndicatorEntity {
                    description: d.clone(),
                    category: c.clone(),
                    ..IndicatorEntity::default()
                },
            );
            for t in &ind.techniques {
                if !at.techniques.contains(t) {
                    at.techniques.push(t.clone());
                }
            }
            at.sources.add(id);
        }
    }
    out
}

fn add_device(out: &mut StoryEntities, i: &Incident) {
    let d = &i.device;
    let device = out.device.get_or_insert_with(DeviceEntity::default);
    // The latest incident's description wins, as everywhere on the story page.
    for (slot, value) in [
        (&mut device.name, d.name.as_deref()),
        (&mut device.agent_uuid, d.agent_uuid.as_deref()),
        (
            &mut device.os,
            d.os_name.as_deref().or(d.os_type.as_deref()),
        ),
        (&mut device.network_status, d.network_status.as_deref()),
    ] {
        if let Some(v) = known_text(value) {
            *slot = Some(v);
        }
    }
    for ip in &d.ips {
        if !device.ips.contains(ip) {
            device.ips.push(ip.clone());
        }
    }
    device.sources.add(&i.external_id);
}

fn add_file(files: &mut Vec<FileEntity>, f: &FileInfo, id: &str) {
    let path = known_text(f.path.as_deref());
    let key = f
        .sha256
        .clone()
        .or_else(|| f.sha1.clone())
        .or_else(|| f.md5.clone())
        .or_else(|| path.clone())
        .map(|k| k.to_ascii_lowercase());
    let Some(key) = key else {
        return;
    };
    let matches = |e: &FileEntity| {
        let same = |a: &Option<String>, b: &Option<String>| {
            a.as_deref()
                .zip(b.as_deref())
                .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b))
        };
        same(&e.sha256, &f.sha256)
            || same(&e.sha1, &f.sha1)
            || same(&e.md5, &f.md5)
            || (e.sha256.is_none()
                && e.sha1.is_none()
                && e.md5.is_none()
                && e.path
                    .as_deref()
                    .is_some_and(|p| p.eq_ignore_ascii_case(&key)))
    };
    let at = find_or_push(files, matches, FileEntity::default);
    for (slot, value) in [
        (&mut at.sha1, f.sha1.as_deref()),
        (&mut at.sha256, f.sha256.as_deref()),
        (&mut at.md5, f.md5.as_deref()),
        (&mut at.name, f.name.as_deref()),
        (&mut at.path, path.as_deref()),
        (&mut at.signer, f.signer.as_deref()),
    ] {
        fill(slot, value);
    }
    at.sources.add(id);
}

/// Fills an empty slot with a known value; a slot already filled keeps the first.
fn fill(slot: &mut Option<String>, value: Option<&str>) {
    if slot.is_none() {
        *slot = known_text(value);
    }
}

fn find_or_push<T>(
    list: &mut Vec<T>,
    matches: impl Fn(&T) -> bool,
    new: impl FnOnce() -> T,
) -> &mut T {
    let at = list.iter().position(matches).unwrap_or_else(|| {
        list.push(new());
        list.len() - 1
    });
    &mut list[at]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Indicator, ProcessInfo, UserRef};
    use crate::criticality::tests::incident;
    use crate::vocabulary::{Confidence, ProducerVerdict};

    fn one(id: &str, day: u32) -> Incident {
        let mut i = incident(id, day, Confidence::Malicious, ProducerVerdict::Undefined);
        i.device.name = Some("HOST".into());
        i.device.ips = vec!["10.0.0.1".into()];
        i.file.sha1 = Some("a".repeat(40));
        i.file.name = Some("x.exe".into());
        i.file.path = Some("C:\\x.exe".into());
        i.context.users = vec![UserRef {
            name: "CORP\\ana".into(),
            role: UserRole::Process,
        }];
        i.context.processes = vec![ProcessInfo {
            name: Some("x.exe".into()),
            command_line: Some("x.exe /s".into()),
            parent: Some("explorer.exe".into()),
            ..ProcessInfo::default()
        }];
        i.context.indicators = vec![Indicator {
            description: Some("packed".into()),
            category: Some("Hiding".into()),
            techniques: vec!["T1027".into()],
        }];
        i
    }

    #[test]
    fn entities_seen_twice_are_listed_once_with_both_incidents() {
        let a = one("1", 1);
        let mut b = one("2", 2);
        b.device.ips = vec!["10.0.0.2".into()];
        b.device.network_status = Some("disconnected".into());
        b.file.sha256 = Some("b".repeat(64));
        b.file.signer = Some("Acme".into());
        b.context.users.push(UserRef {
            name: "corp\\ANA".into(),
            role: UserRole::LoggedIn,
        });
        let e = of(&[a, b]);
        let device = e.device.unwrap_or_default();
        assert_eq!(device.ips, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(device.network_status.as_deref(), Some("disconnected"));
        assert_eq!(device.sources.incident_ids, ["1", "2"]);
        assert_eq!(e.files.len(), 1, "{:?}", e.files);
        assert_eq!(e.files[0].sha256.as_deref(), Some("b".repeat(64).as_str()));
        assert_eq!(e.files[0].signer.as_deref(), Some("Acme"));
        assert_eq!(e.files[0].sources.incident_count, 2);
        assert_eq!(e.users.len(), 1);
        assert_eq!(e.users[0].roles, [UserRole::Process, UserRole::LoggedIn]);
        assert_eq!(e.users[0].sources.incident_count, 2);
        assert_eq!(e.processes.len(), 1);
        assert_eq!(e.processes[0].parent.as_deref(), Some("explorer.exe"));
        assert_eq!(e.indicators[0].techniques, ["T1027"]);
        assert_eq!(e.indicators[0].sources.incident_ids, ["1", "2"]);
        assert!(e.storylines.is_empty());
    }

    #[test]
    fn a_fileless_incident_shows_its_storyline_and_process_not_a_file() {
        let mut i = one("1", 1);
        i.is_fileless = true;
        i.file.name = Some("SuspiciousScript".into());
        i.storyline = Some("ABC".into());
        let e = of(&[i]);
        assert!(e.files.is_empty(), "{:?}", e.files);
        assert_eq!(e.storylines[0].id, "ABC");
        assert_eq!(e.processes[0].name.as_deref(), Some("x.exe"));
    }

    #[test]
    fn ids_stop_at_the_cap_but_the_count_goes_on() {
        let incidents: Vec<Incident> = (0..50).map(|n| one(&n.to_string(), n)).collect();
        let e = of(&incidents);
        let d = e.device.unwrap_or_default();
        assert_eq!(d.sources.incident_count, 50);
        assert_eq!(d.sources.incident_ids.len(), MAX_IDS);
    }

    fn arb_incidents() -> impl proptest::strategy::Strategy<Value = Vec<Incident>> {
        use proptest::prelude::*;
        let user = (0..4u8, any::<bool>()).prop_map(|(n, logged)| UserRef {
            name: ["ana", "ANA", "bob", " "][usize::from(n)].into(),
            role: if logged {
                UserRole::LoggedIn
            } else {
                UserRole::Process
            },
        });
        let one = (
            proptest::collection::vec(user, 0..3),
            0..3u8,
            any::<bool>(),
            proptest::option::of(0..3u8),
        );
        proptest::collection::vec(one, 0..12).prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(n, (users, file, fileless, process))| {
                    let mut i = incident(
                        &format!("i{n}"),
                        u32::try_from(n).unwrap_or_default(),
                        Confidence::Malicious,
                        ProducerVerdict::Undefined,
                    );
                    i.context.users = users;
                    i.file.sha1 = (file > 0).then(|| format!("{file}").repeat(40));
                    i.is_fileless = fileless;
                    i.storyline = Some(format!("SL{}", n % 2));
                    i.context.processes = process
                        .map(|p| ProcessInfo {
                            name: Some(format!("p{p}.exe")),
                            ..ProcessInfo::default()
                        })
                        .into_iter()
                        .collect();
                    i
                })
                .collect()
        })
    }

    proptest::proptest! {
        #[test]
        fn every_entity_comes_from_incidents_of_the_story(incidents in arb_incidents()) {
            let e = of(&incidents);
            proptest::prop_assert_eq!(&e, &of(&incidents), "deterministic");
            let n = u32::try_from(incidents.len()).unwrap_or(u32::MAX);
            let ids: Vec<&str> = incidents.iter().map(|i| i.external_id.as_str()).collect();
            match &e.device {
                Some(d) => proptest::prop_assert_eq!(d.sources.incident_count, n),
                None => proptest::prop_assert!(incidents.is_empty()),
            }
            let all = e.users.iter().map(|u| &u.sources)
                .chain(e.files.iter().map(|f| &f.sources))
                .chain(e.processes.iter().map(|p| &p.sources))
                .chain(e.storylines.iter().map(|s| &s.sources))
                .chain(e.indicators.iter().map(|i| &i.sources));
            for s in all {
                proptest::prop_assert!(s.incident_count >= 1 && s.incident_count <= n);
                proptest::prop_assert!(s.incident_ids.iter().all(|id| ids.contains(&id.as_str())));
            }
            // A file only from an incident with one; storylines only from fileless ones.
            let with_file = incidents.iter().filter(|i| !i.is_fileless && i.file.sha1.is_some());
            proptest::prop_assert_eq!(e.files.is_empty(), with_file.count() == 0);
            proptest::prop_assert_eq!(
                e.storylines.is_empty(),
                !incidents.iter().any(|i| i.is_fileless)
            );
            // Users are listed once whatever their letter case.
            for (a, u) in e.users.iter().enumerate() {
                proptest::prop_assert!(e.users[a + 1..].iter().all(|v| !v.name.eq_ignore_ascii_case(&u.name)));
            }
        }
    }

    #[test]
    fn empty_names_make_no_entity() {
        let mut i = one("1", 1);
        i.context.users = vec![UserRef {
            name: " ".into(),
            role: UserRole::LoggedIn,
        }];
        i.file = FileInfo::default();
        assert!(of(&[i]).users.is_empty());
        assert_eq!(of(&[]), StoryEntities::default());
    }
}
