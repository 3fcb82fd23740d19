//! The seeded threat generator: which agent sees which file when, with realistic reuse.
//!
//! Deterministic given the seed and the sequence of calls: one `StdRng` drives everything,
//! and no hash-map iteration order or clock reading leaks in.
//!
//! Mix of generated threats (by share of threats):
//! - 5 % fileless/STAR detections (`sha1: ""`, `isFileless: true`, `initiatedBy: star_active`);
//! - 30 % recurrences: one file coming back on one agent, 2–6 times, hours to weeks apart;
//! - 10 % outbreaks: one of a few files hitting 5–40 agents within three days;
//! - 55 % single detections, skewed towards noisy agents; 60 % of them are files never seen
//!   before, the rest commodity files of the catalogue (many hashes on one device only, a few
//!   on many).
//!
//! History threats get later updates (mitigation, verdict, incident status) minutes to days
//! after creation for about a third of them; 2 % have `updatedAt` a few milliseconds *before*
//! `createdAt`, as in `sekoia_threat.json`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::agents::{Agent, Layout};
use crate::catalog::{indicator, Os, PRE_EXECUTION};
use crate::families::{FAMILIES, FILELESS};
use crate::files::FileEntry;
use crate::host::{random_string, HEX};
use crate::ids::snowflake;
use crate::lifecycle::{Action, Status};
use crate::store::Facets;
use crate::threat::{render, Constants, Context, Draft, Source};

/// Threat mix categories, with their target share of threats (percent).
const SHARES: [(Kind, u32); 4] = [
    (Kind::Fileless, 5),
    (Kind::Recurring, 30),
    (Kind::Outbreak, 10),
    (Kind::Single, 55),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fileless,
    Recurring,
    Outbreak,
    Single,
}

/// A rendered threat ready for the store.
pub(crate) struct Rendered {
    pub key: u128,
    pub id: String,
    pub text: String,
    pub facets: Facets,
}

/// The generator's state: agents, file catalogue, outbreak files, and the random stream.
pub(crate) struct Generator {
    rng: StdRng,
    agents: Vec<Agent>,
    files: Vec<FileEntry>,
    /// File indexes per OS (Windows, macOS, Linux).
    files_by_os: [Vec<usize>; 3],
    outbreaks: Vec<usize>,
    family_indicators: Vec<Box<RawValue>>,
    fileless_indicators: Vec<Box<RawValue>>,
    constants: Constants,
    /// Low bits of the next snowflake id.
    sequence: u32,
    /// Threats generated per kind, to steer the mix.
    produced: [u64; 4],
}

fn os_slot(os: Os) -> usize {
    match os {
        Os::Windows => 0,
        Os::Mac => 1,
        Os::Linux => 2,
    }
}

fn indicators_json(indexes: &[usize]) -> Box<RawValue> {
    let list: Vec<Value> = indexes.iter().map(|i| indicator(*i)).collect();
    serde_json::value::to_raw_value(&list).unwrap_or_default()
}

impl Generator {
    /// Returns a generator with `agents` agents (at least one) and their file catalogue.
    pub(crate) fn new(seed: u64, agents: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let layout = Layout::generate(&mut rng);
        let agents: Vec<Agent> = (0..agents.max(1))
            .map(|_| Agent::generate(&mut rng, &layout))
            .collect();
        let mut files = Vec::new();
        let mut files_by_os: [Vec<usize>; 3] = Default::default();
        for os in [Os::Windows, Os::Mac, Os::Linux] {
            let on_os = agents.iter().filter(|a| a.os == os).count();
            for _ in 0..(on_os * 3 / 10).max(6) {
                files_by_os[os_slot(os)].push(files.len());
                files.push(FileEntry::generate(&mut rng, os));
            }
        }
        // OS families that have agents (Windows first when present).
        let present: Vec<usize> = (0..3)
            .filter(|slot| agents.iter().any(|a| os_slot(a.os) == *slot))
            .collect();
        let outbreaks = (0..rng.gen_range(3..=6))
            .map(|i| {
                // Mostly the first family (Windows), the others now and then.
                let slot = if i < 3 {
                    present[0]
                } else {
                    present[i % present.len()]
                };
                let list = &files_by_os[slot];
                list[rng.gen_range(0..list.len())]
            })
            .collect();
        Self {
            rng,
            agents,
            files,
            files_by_os,
            outbreaks,
            family_indicators: FAMILIES
                .iter()
                .map(|f| indicators_json(f.indicators))
                .collect(),
            fileless_indicators: FILELESS.iter().map(|f| indicators_json(f.2)).collect(),
            constants: Constants::default(),
            sequence: 0,
            produced: [0; 4],
        }
    }

    /// Returns `n` threats created in `[from, to]` (µs), oldest first, with later updates no
    /// later than `to`. `taken` tells which ids already exist.
    pub(crate) fn history(
        &mut self,
        n: usize,
        from: i64,
        to: i64,
        taken: &dyn Fn(u128) -> bool,
    ) -> Vec<Rendered> {
        let to = to.max(from);
        let mut plan: Vec<(i64, usize, Source)> = Vec::with_capacity(n);
        while plan.len() < n {
            let remaining = n - plan.len();
            let kind = self.next_kind();
            let before = plan.len();
            match kind {
                Kind::Fileless => {
                    let at = self.rng.gen_range(from..=to);
                    let agent = self.pick_agent();
                    let kind = self.fileless_kind(self.agents[agent].os);
                    plan.push((at, agent, Source::Fileless(kind)));
                }
                Kind::Recurring => {
                    let agent = self.pick_agent();
                    let file = self.pick_file(self.agents[agent].os);
                    let mut at = self.rng.gen_range(from..=to);
                    for _ in 0..self.rng.gen_range(2..=6).min(remaining) {
                        plan.push((at, agent, Source::File(file)));
                        // Hours to three weeks later.
                        at += self.rng.gen_range(3_600_000_000..1_814_400_000_000);
                        if at > to {
                            break;
                        }
                    }
                }
                Kind::Outbreak => {
                    let file = self.outbreaks[self.rng.gen_range(0..self.outbreaks.len())];
                    let os = self.files[file].os;
                    let start = self.rng.gen_range(from..=to);
                    for _ in 0..self.rng.gen_range(5..=40).min(remaining) {
                        let agent = self.pick_agent_on(os);
                        let at = (start + self.rng.gen_range(0..259_200_000_000)).min(to);
                        plan.push((at, agent, Source::File(file)));
                    }
                }
                Kind::Single => {
                    let at = self.rng.gen_range(from..=to);
                    let agent = self.pick_agent();
                    let file = self.single_file(self.agents[agent].os);
                    plan.push((at, agent, Source::File(file)));
                }
            }
            self.record(kind, plan.len() - before);
        }
        plan.sort_by_key(|p| p.0);
        plan.into_iter()
            .map(|(created, agent, source)| {
                let mut draft = self.draft(created, agent, source, taken);
                self.age(&mut draft, to);
                self.render(&draft)
            })
            .collect()
    }

    /// Returns one threat created (and updated) at `now`.
    pub(crate) fn live(&mut self, now: i64, taken: &dyn Fn(u128) -> bool) -> Rendered {
        let kind = self.next_kind();
        self.record(kind, 1);
        let agent = match kind {
            Kind::Outbreak => {
                let file = self.outbreaks[self.rng.gen_range(0..self.outbreaks.len())];
                self.pick_agent_on(self.files[file].os)
            }
            _ => self.pick_agent(),
        };
        let source = match kind {
            Kind::Fileless => Source::Fileless(self.fileless_kind(self.agents[agent].os)),
            Kind::Outbreak => {
                let os = self.agents[agent].os;
                let on_os: Vec<usize> = self
                    .outbreaks
                    .iter()
                    .copied()
                    .filter(|f| self.files[*f].os == os)
                    .collect();
                if on_os.is_empty() {
                    Source::File(self.pick_file(os))
                } else {
                    Source::File(on_os[self.rng.gen_range(0..on_os.len())])
                }
            }
            // Recurrence: the agent's earlier file comes back (a per-agent favourite file).
            Kind::Recurring => Source::File(self.favourite_file(agent)),
            Kind::Single => Source::File(self.single_file(self.agents[agent].os)),
        };
        let mut draft = self.draft(now, agent, source, taken);
        draft.updated = now;
        for action in &mut draft.actions {
            action.at = now;
        }
        self.render(&draft)
    }

    /// Returns the random stream, for updates decided outside the generator.
    pub(crate) fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    #[expect(
        clippy::cast_possible_wrap,
        reason = "counts of generated threats times 100, far below 2^63"
    )]
    fn next_kind(&mut self) -> Kind {
        // The kind furthest below its target share, ties broken at random.
        let total: u64 = self.produced.iter().sum::<u64>() + 1;
        let jitter = self.rng.gen_range(0..4);
        let mut best = (Kind::Single, i64::MIN);
        for (i, (kind, share)) in SHARES.iter().enumerate() {
            let deficit = (total * u64::from(*share)) as i64 - (self.produced[i] * 100) as i64
                + if i == jitter { 20 } else { 0 };
            if deficit > best.1 {
                best = (*kind, deficit);
            }
        }
        best.0
    }

    fn record(&mut self, kind: Kind, count: usize) {
        if let Some(i) = SHARES.iter().position(|(k, _)| *k == kind) {
            self.produced[i] += count as u64;
        }
    }

    /// Noisy agents see more threats: a skewed pick.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a fraction in [0, 1) of a length: the floor is an index"
    )]
    fn pick_agent(&mut self) -> usize {
        let u: f64 = self.rng.gen();
        ((u * u * u) * self.agents.len() as f64) as usize % self.agents.len()
    }

    fn pick_agent_on(&mut self, os: Os) -> usize {
        for _ in 0..64 {
            let i = self.rng.gen_range(0..self.agents.len());
            if self.agents[i].os == os {
                return i;
            }
        }
        self.agents.iter().position(|a| a.os == os).unwrap_or(0)
    }

    /// Common files are seen more: a skewed pick in the OS's catalogue.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a fraction in [0, 1) of a length: the floor is an index"
    )]
    fn pick_file(&mut self, os: Os) -> usize {
        let list = &self.files_by_os[os_slot(os)];
        let u: f64 = self.rng.gen();
        list[((u * u) * list.len() as f64) as usize % list.len()]
    }

    /// Interactive-session detections name Windows binaries; other systems get the unnamed
    /// custom-rule ones.
    fn fileless_kind(&mut self, os: Os) -> usize {
        if os == Os::Windows {
            self.rng.gen_range(0..FILELESS.len())
        } else {
            let unnamed: Vec<usize> = (0..FILELESS.len())
                .filter(|i| FILELESS[*i].0.is_empty())
                .collect();
            unnamed[self.rng.gen_range(0..unnamed.len())]
        }
    }

    /// Most one-off detections are of files never seen before (polymorphic samples, fresh
    /// builds); the rest are commodity files of the catalogue.
    fn single_file(&mut self, os: Os) -> usize {
        if self.rng.gen_bool(0.6) {
            self.files.push(FileEntry::generate(&mut self.rng, os));
            self.files.len() - 1
        } else {
            self.pick_file(os)
        }
    }

    fn favourite_file(&self, agent: usize) -> usize {
        let list = &self.files_by_os[os_slot(self.agents[agent].os)];
        list[(agent * 7919) % list.len()]
    }

    fn draft(
        &mut self,
        created: i64,
        agent: usize,
        source: Source,
        taken: &dyn Fn(u128) -> bool,
    ) -> Draft {
        let mut id;
        loop {
            self.sequence = (self.sequence + 1) & 0x7F_FFFF;
            id = snowflake(created, self.sequence);
            if !taken(id) {
                break;
            }
        }
        let rng = &mut self.rng;
        let os = self.agents[agent].os;
        let storyline = match os {
            Os::Linux => {
                let h = random_string(rng, HEX, 32);
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
            _ => random_string(rng, b"0123456789ABCDEF", 16),
        };
        let (malicious, preemptive_engine) = match source {
            Source::File(f) => {
                let family = &FAMILIES[self.files[f].family];
                (
                    family.confidence == "malicious",
                    family.engine == PRE_EXECUTION,
                )
            }
            Source::Fileless(_) => (true, false),
        };
        // Only agents in protect mode mitigate on their own.
        let mitigated = malicious && self.agents[agent].protect && rng.gen_bool(0.8);
        let mut status = Status::detected(mitigated);
        let mut actions = Vec::new();
        if mitigated {
            let base = snowflake(created + 400_000, 0);
            actions = status.apply(crate::lifecycle::Change::Mitigate, created + 400_000, base);
            if matches!(source, Source::Fileless(_)) {
                actions.retain(|a| a.action == "kill");
            }
        }
        Draft {
            id,
            agent,
            source,
            created,
            updated: created,
            storyline,
            mitigated_preemptively: mitigated && preemptive_engine,
            status,
            actions,
            with_sha256: rng.gen_bool(0.4),
            with_md5: rng.gen_bool(0.2),
            null_detection: rng.gen_bool(0.03),
            whitening: !rng.gen_bool(0.05),
        }
    }

    /// Gives a history threat its later life: updates up to `to`, or the usual small gap
    /// between creation and first update (sometimes negative).
    fn age(&mut self, draft: &mut Draft, to: i64) {
        let rng = &mut self.rng;
        let roll = rng.gen_range(0..100);
        if roll < 2 {
            draft.updated = draft.created - rng.gen_range(1_000..10_000);
            return;
        }
        let settle = draft
            .actions
            .first()
            .map_or(draft.created, |a| a.at + 1_000);
        draft.updated = (settle + rng.gen_range(0..5_000_000)).min(to.max(draft.created));
        if roll >= 36 {
            return;
        }
        let mut at = draft.updated;
        for _ in 0..rng.gen_range(1..=2) {
            // Minutes to five days later.
            let next = at + rng.gen_range(120_000_000..432_000_000_000);
            if next > to {
                break;
            }
            at = next;
            let change = draft.status.next_change(rng);
            let new: Vec<Action> = draft.status.apply(change, at, snowflake(at, 0));
            draft.actions.splice(0..0, new);
            draft.updated = at;
        }
    }

    fn render(&self, draft: &Draft) -> Rendered {
        let ctx = Context {
            agents: &self.agents,
            files: &self.files,
            families: FAMILIES,
            family_indicators: &self.family_indicators,
            fileless_indicators: &self.fileless_indicators,
            constants: &self.constants,
        };
        let (text, facets) = render(&ctx, draft);
        Rendered {
            key: draft.id,
            id: draft.id.to_string(),
            text,
            facets,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::time::parse_micros;

    fn span() -> (i64, i64) {
        (
            parse_micros("2025-01-01T00:00:00Z").unwrap(),
            parse_micros("2025-04-01T00:00:00Z").unwrap(),
        )
    }

    #[test]
    fn facets_match_the_rendered_json() {
        let mut g = Generator::new(5, 40);
        let (from, to) = span();
        for r in g.history(300, from, to, &|_| false) {
            let v: Value = serde_json::from_str(&r.text).unwrap();
            assert_eq!(Facets::from_threat(&v).unwrap(), r.facets, "{}", r.text);
            assert_eq!(v["id"], r.id.as_str());
            assert_eq!(v["threatInfo"]["threatId"], r.id.as_str());
        }
    }

    #[test]
    fn mix_follows_the_targets() {
        let mut g = Generator::new(11, 200);
        let (from, to) = span();
        let all = g.history(4000, from, to, &|_| false);
        let fileless = all.iter().filter(|r| r.facets.sha1.is_empty()).count();
        assert!((150..=250).contains(&fileless), "{fileless}");
        let later = all
            .iter()
            .filter(|r| r.facets.updated > r.facets.created + 60_000_000)
            .count();
        assert!(later > 600, "{later}");
        let earlier = all
            .iter()
            .filter(|r| r.facets.updated < r.facets.created)
            .count();
        assert!((40..=130).contains(&earlier), "{earlier}");
        assert!(all
            .iter()
            .all(|r| r.facets.updated <= to && r.facets.created >= from));
        assert!(all
            .windows(2)
            .all(|w| w[0].facets.created <= w[1].facets.created));
    }

    #[test]
    fn files_match_the_agent_os_even_in_tiny_tenants() {
        for seed in 0..20 {
            let mut g = Generator::new(seed, 1);
            let (from, to) = span();
            for r in g.history(100, from, to, &|_| false) {
                let v: Value = serde_json::from_str(&r.text).unwrap();
                let path = v["threatInfo"]["filePath"].as_str().unwrap();
                let windows = v["agentRealtimeInfo"]["agentOsType"] == "windows";
                if !path.is_empty() {
                    assert_eq!(path.starts_with(r"\Device\"), windows, "{path}");
                }
                let name = v["threatInfo"]["threatName"].as_str().unwrap();
                assert!(windows || !name.contains(".exe"), "{name}");
            }
        }
    }

    #[test]
    fn ids_grow_with_creation_and_avoid_taken_ones() {
        let mut g = Generator::new(1, 10);
        let (from, to) = span();
        let first = g.history(50, from, to, &|_| false);
        assert!(first.windows(2).all(|w| w[0].key < w[1].key));
        assert!(first.iter().all(|r| r.id.len() == 19));
        let live = g.live(to, &|id| id % 2 == 1);
        assert_eq!(live.key % 2, 0);
        assert_eq!((live.facets.created, live.facets.updated), (to, to));
    }
}
