//! Correlation: which incidents belong to the same story.
//!
//! The rule (PRODUCT.md, "Correlation"):
//! - the key is (account, device = agent UUID, threat file hash); the hash is `sha1` when valid,
//!   else `sha256`, else `md5`. A threat carrying both `sha1` and `sha256` links the two, so that
//!   a threat that only carries the `sha256` joins the story of the `sha1` (sha256 is an alias);
//! - fileless threats (no valid hash) correlate on (agent, storyline), and failing that are a
//!   story of their own; so is a threat with no agent at all;
//! - an incident joins the story of its key whose first incident is at most `window` older
//!   (on `created_at`); later incidents start a new story, linked to the earlier one;
//! - a story holds at most `cap` incidents; overflow continues in a new linked story.
//!
//! [`correlate`] is a pure function of the *set* of members it is given, so any order and any
//! page split of the same threats give the same stories, and story ids are derived from the
//! account, the key and the story's first incident, so that every node computes the same ids.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::incident::{Incident, Producer};

/// Deployment-wide correlation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How much older than a story's first incident a joining incident may be.
    pub window: Duration,
    /// The most incidents one story holds before overflowing into a linked story.
    pub cap: usize,
    /// A closed story reopens when an incident arrives at least this long after closing.
    pub reopen_after: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            window: Duration::days(90),
            cap: 1000,
            reopen_after: Duration::hours(12),
        }
    }
}

impl Policy {
    /// Returns the timeline text of a story reopened under this policy, written from its
    /// reopen period: `a new incident arrived 12 hours or more after the story was closed`.
    #[must_use]
    pub fn reopen_text(&self) -> String {
        format!(
            "a new incident arrived {} or more after the story was closed",
            crate::time::period(self.reopen_after)
        )
    }
}

/// What correlation needs to know of one incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Stable id of the incident, unique within the account.
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// Agent UUID, lowercase.
    pub agent: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
    pub md5: Option<String>,
    pub storyline: Option<String>,
}

impl Member {
    /// Builds the member for an incident, under the id the store knows it by.
    #[must_use]
    pub fn of_incident(id: impl Into<String>, incident: &Incident) -> Self {
        Self {
            id: id.into(),
            created_at: incident.created_at,
            agent: incident.device.agent_uuid.clone(),
            sha1: incident.file.sha1.clone(),
            sha256: incident.file.sha256.clone(),
            md5: incident.file.md5.clone(),
            storyline: incident.storyline.clone(),
        }
    }

    /// The hashes that link this member to others, each with its kind: sha1 and sha256
    /// (alias), or md5 alone when it has neither.
    pub(crate) fn linking_hashes(&self) -> Vec<(HashKind, &str)> {
        fn present(kind: HashKind, h: Option<&str>) -> Option<(HashKind, &str)> {
            h.filter(|h| !h.is_empty()).map(|h| (kind, h))
        }
        let strong: Vec<(HashKind, &str)> = [
            present(HashKind::Sha1, self.sha1.as_deref()),
            present(HashKind::Sha256, self.sha256.as_deref()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if strong.is_empty() {
            present(HashKind::Md5, self.md5.as_deref())
                .into_iter()
                .collect()
        } else {
            strong
        }
    }

    fn agent(&self) -> Option<&str> {
        self.agent.as_deref().filter(|a| !a.is_empty())
    }

    fn storyline(&self) -> Option<&str> {
        self.storyline.as_deref().filter(|s| !s.is_empty())
    }
}

/// What a story correlates on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// A file hash on one device.
    Hash,
    /// A storyline on one device (fileless threats).
    Storyline,
    /// A story of its own: no device, or neither hash nor storyline.
    Single,
}

impl KeyKind {
    /// Returns the stable name used in story keys.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Hash => "hash",
            KeyKind::Storyline => "storyline",
            KeyKind::Single => "single",
        }
    }
}

/// The correlation key of a story, within its account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoryKey {
    pub kind: KeyKind,
    /// Agent UUID, lowercase; empty for a story of its own without a device.
    pub agent: String,
    /// The canonical hash, the storyline, or the member id of a story of its own.
    pub value: String,
}

impl StoryKey {
    /// Returns the file hash a story of this key is about: the canonical hash of a key on a
    /// file, `None` for a storyline or a story of its own. The outbreak of a story's file counts
    /// the devices of the account with a story of the same file, by the file's identity across
    /// the account ([`crate::files`]), of which this hash is one name.
    #[must_use]
    pub fn file_hash(&self) -> Option<&str> {
        (self.kind == KeyKind::Hash).then_some(self.value.as_str())
    }

    /// Returns the key as one string, the form it is stored and indexed in.
    #[must_use]
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.kind.as_str(), self.agent, self.value)
    }
}

/// Which of a file's hashes a term is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    Sha1,
    Sha256,
    Md5,
}

/// A term the store looks incidents up by: every stored incident that shares a term with a new
/// one may share its story. The store loads all incidents matching the terms of a batch, then
/// the terms of what it loaded, until nothing new turns up, and hands that closed set to
/// [`correlate`].
///
/// A stored incident matches a term when the term is one of its own [`terms`]: for a sha1 or a
/// sha256, the incident has that hash; for an md5, it has that md5 and neither a sha1 nor a
/// sha256; for a storyline, it has that storyline and no hash at all. Each on the same agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Term {
    Hash {
        agent: String,
        kind: HashKind,
        hash: String,
    },
    Storyline {
        agent: String,
        storyline: String,
    },
}

impl Term {
    /// Returns whether a member matches this term (see [`Term`]).
    #[must_use]
    pub fn matches(&self, member: &Member) -> bool {
        terms(member).contains(self)
    }
}

/// Returns the lookup terms of a member (none for a story of its own).
#[must_use]
pub fn terms(member: &Member) -> Vec<Term> {
    let Some(agent) = member.agent() else {
        return Vec::new();
    };
    let hashes = member.linking_hashes();
    if !hashes.is_empty() {
        return hashes
            .into_iter()
            .map(|(kind, h)| Term::Hash {
                agent: agent.to_owned(),
                kind,
                hash: h.to_owned(),
            })
            .collect();
    }
    member
        .storyline()
        .map(|s| Term::Storyline {
            agent: agent.to_owned(),
            storyline: s.to_owned(),
        })
        .into_iter()
        .collect()
}

/// One story as correlation decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoryPlan {
    /// Deterministic id: the same set of incidents always yields the same id.
    pub id: String,
    pub key: StoryKey,
    /// Member ids, ordered by (`created_at`, id).
    pub members: Vec<String>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    /// The story this one continues (the previous window of the same key, or the story it
    /// overflowed from).
    pub previous: Option<String>,
}

/// Returns the stories that a closed set of members forms (see [`Term`] for what closed means),
/// ordered by id. Members with the same id are taken once.
#[must_use]
pub fn correlate(
    account_id: &str,
    producer: Producer,
    members: &[Member],
    policy: &Policy,
) -> Vec<StoryPlan> {
    let unique: BTreeMap<&str, &Member> = members.iter().map(|m| (m.id.as_str(), m)).collect();
    let canonical = canonical_hashes(unique.values().copied());

    let mut by_key: BTreeMap<StoryKey, Vec<&Member>> = BTreeMap::new();
    for m in unique.values().copied() {
        by_key.entry(key_of(m, &canonical)).or_default().push(m);
    }

    let cap = policy.cap.max(1);
    let mut plans = Vec::new();
    for (key, mut group) in by_key {
        group.sort_by(|a, b| {
            crate::criticality::story_order((a.created_at, &a.id), (b.created_at, &b.id))
        });
        let mut previous: Option<String> = None;
        let mut window: Vec<&Member> = Vec::new();
        for m in group {
            let fits = window.first().is_some_and(|first| {
                window.len() < cap && m.created_at - first.created_at <= policy.window
            });
            if !fits && !window.is_empty() {
                let plan = make_plan(account_id, producer, &key, &window, previous.take());
                previous = Some(plan.id.clone());
                plans.push(plan);
                window.clear();
            }
            window.push(m);
        }
        if !window.is_empty() {
            plans.push(make_plan(account_id, producer, &key, &window, previous));
        }
    }
    plans.sort_by(|a, b| a.id.cmp(&b.id));
    plans
}

/// What a page's version of an incident does to the stored stories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The incident was never seen: correlation decides its story.
    New,
    /// No newer than the stored version (the overlap and sweeps read threats again): nothing
    /// is written, and a stale version never overwrites a newer one.
    Unchanged,
    /// Newer, and what correlation reads of it is the same: it stays in its story, which grows
    /// or changes in place.
    InPlace,
    /// Newer, and its key changed (a hash or a device arrived, say): correlation decides again,
    /// for its new key's stories and for its old key's.
    Rekeyed,
}

/// Returns what a version of an incident updated at `updated_at`, correlated as `member`, does
/// given the stored version, if any (its update time and how it was correlated). Versions are
/// deduplicated on (id, update time).
#[must_use]
pub fn arrival(
    stored: Option<(DateTime<Utc>, &Member)>,
    updated_at: DateTime<Utc>,
    member: &Member,
) -> Arrival {
    match stored {
        None => Arrival::New,
        Some((stored_at, _)) if stored_at >= updated_at => Arrival::Unchanged,
        Some((_, was)) if was == member => Arrival::InPlace,
        Some(_) => Arrival::Rekeyed,
    }
}

/// Returns whether a story reopens when new incidents arrive at `arrived_at`: it is closed,
/// something new arrived, and it was closed at least the policy's reopen period before. Within
/// that period the incidents are added and the story stays closed (PRODUCT.md, Correlation).
#[must_use]
pub fn reopens(
    status: crate::story::Status,
    closed_at: Option<DateTime<Utc>>,
    new_incidents: bool,
    arrived_at: DateTime<Utc>,
    policy: &Policy,
) -> bool {
    status == crate::story::Status::Closed
        && new_incidents
        && closed_at.is_some_and(|c| should_reopen(c, arrived_at, policy))
}

/// A stored story that correlating again left without incidents, and the story that takes
/// its place (and its analyst's work, [`crate::story::Triage::inherit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub retired: String,
    pub successor: String,
}

/// Returns the stories a page retires: every story some member was stored in (`before`:
/// member id → story id) that no plan keeps, each with its successor, the plan most of its
/// members moved to (of plans equally many, the smaller id). `plans` are the stories of a
/// closed set of members (see [`Term`]), so a story not among them has lost every incident.
#[must_use]
pub fn retirements<'a>(
    before: impl IntoIterator<Item = (&'a str, &'a str)>,
    plans: &[StoryPlan],
) -> Vec<Retirement> {
    let plan_of: HashMap<&str, &str> = plans
        .iter()
        .flat_map(|p| p.members.iter().map(|m| (m.as_str(), p.id.as_str())))
        .collect();
    let kept: std::collections::HashSet<&str> = plans.iter().map(|p| p.id.as_str()).collect();
    // retired story -> (successor -> members moved there)
    let mut moved: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (member, story) in before {
        if kept.contains(story) {
            continue;
        }
        if let Some(now_in) = plan_of.get(member) {
            *moved.entry(story).or_default().entry(now_in).or_default() += 1;
        }
    }
    moved
        .into_iter()
        .filter_map(|(retired, targets)| {
            let (successor, _) = targets
                .into_iter()
                .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))?;
            Some(Retirement {
                retired: retired.to_owned(),
                successor: successor.to_owned(),
            })
        })
        .collect()
}

/// Returns whether a closed story reopens for an incident arriving at `arrived_at`.
#[must_use]
pub fn should_reopen(closed_at: DateTime<Utc>, arrived_at: DateTime<Utc>, policy: &Policy) -> bool {
    arrived_at - closed_at >= policy.reopen_after
}

/// Returns the deterministic id of the story of `key` whose first incident is `first_member`,
/// created at `first_at`. The id starts with the first incident's time (seconds, hex), so that
/// stories are stored roughly in time order: story ids are index keys, and ids that arrive in
/// order append to their index instead of landing on random pages.
#[must_use]
pub fn story_id(
    account_id: &str,
    producer: Producer,
    key: &StoryKey,
    first_member: &str,
    first_at: DateTime<Utc>,
) -> String {
    let mut h = Sha256::new();
    for part in [account_id, producer.as_str(), &key.encode(), first_member] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let secs = u64::try_from(first_at.timestamp())
        .unwrap_or(0)
        .min(0xff_ffff_ffff);
    format!("{secs:010x}{}", &hex::encode(&h.finalize()[..11])[..22])
}

fn make_plan(
    account_id: &str,
    producer: Producer,
    key: &StoryKey,
    window: &[&Member],
    previous: Option<String>,
) -> StoryPlan {
    let first = window[0];
    let last_at = window
        .iter()
        .map(|m| m.created_at)
        .max()
        .unwrap_or(first.created_at);
    StoryPlan {
        id: story_id(account_id, producer, key, &first.id, first.created_at),
        key: key.clone(),
        members: window.iter().map(|m| m.id.clone()).collect(),
        first_at: first.created_at,
        last_at,
        previous,
    }
}

fn key_of(m: &Member, canonical: &HashMap<(&str, &str), &str>) -> StoryKey {
    let single = || StoryKey {
        kind: KeyKind::Single,
        agent: String::new(),
        value: m.id.clone(),
    };
    let Some(agent) = m.agent() else {
        return single();
    };
    if let Some((_, h)) = m.linking_hashes().first() {
        let value = canonical.get(&(agent, *h)).copied().unwrap_or(h);
        return StoryKey {
            kind: KeyKind::Hash,
            agent: agent.to_owned(),
            value: value.to_owned(),
        };
    }
    if let Some(s) = m.storyline() {
        return StoryKey {
            kind: KeyKind::Storyline,
            agent: agent.to_owned(),
            value: s.to_owned(),
        };
    }
    StoryKey {
        agent: agent.to_owned(),
        ..single()
    }
}

/// Groups the hashes of each agent into components linked by members that carry several, and
/// maps every (agent, hash) to its component's canonical hash: its preferred name
/// ([`crate::files::preferred`]), the smallest sha1 in it, else the smallest sha256, else the
/// hash itself.
fn canonical_hashes<'a>(
    members: impl Iterator<Item = &'a Member>,
) -> HashMap<(&'a str, &'a str), &'a str> {
    let mut files = crate::files::Components::default();
    for m in members {
        let Some(agent) = m.agent() else { continue };
        files.link(
            m.linking_hashes()
                .into_iter()
                .map(|(kind, h)| (agent, kind, h)),
        );
    }
    // Within a component the agent is one, so the least node is the least (kind, hash).
    files
        .least()
        .into_iter()
        .map(|((agent, _, h), (_, _, best))| ((agent, h), best))
        .collect()
}

#[cfg(test)]
mod tests;
