//! The store tells the stories the domain tells: the same random incidents, driven through the
//! domain's rules alone and through the store page by page, give the same stories (ids and
//! members), criticality, reasons and summary. A rule the store wrote again for itself, and let
//! drift from the domain's, fails here.

use std::collections::{BTreeMap, BTreeSet};

use dossier_domain::correlate::{correlate, Member, Policy, StoryPlan};
use dossier_domain::criticality::{criticality, CriticalityFacts};
use dossier_domain::files::file_identities;
use dossier_domain::summary::{summary, SummaryFacts};
use dossier_domain::Incident;
use proptest::prelude::*;

use super::{incident, sha1, t0, Backend, Fixture};
use crate::Store;

/// Vendor values as SentinelOne spells them, and as odd tenants do: other letter cases, stray
/// white space, values no rule knows.
const CONFIDENCE: &[&str] = &["malicious", "MALICIOUS", "Suspicious", "n/a", "N/A", "test"];
const MITIGATION: &[&str] = &[
    "mitigated",
    "Not_Mitigated",
    "not_mitigated",
    "MARKED_AS_BENIGN",
    "pending",
];
const VERDICT: &[&str] = &[
    "undefined",
    "false_positive",
    "FALSE_POSITIVE",
    "true_positive",
];
const MACHINE: &[&str] = &["desktop", "SERVER", "server ", "laptop", "kubernetes node"];

fn pick(values: &[&str], n: u32) -> Option<String> {
    // The last choice is "the tenant sent nothing".
    values
        .get(n as usize % (values.len() + 1))
        .map(|v| (*v).to_owned())
}

fn arb_incidents() -> impl Strategy<Value = Vec<Incident>> {
    let one = (
        (0i64..200, 0u32..4, 0u32..3, any::<bool>(), 0u32..4),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            0u32..3,
        ),
    );
    prop::collection::vec(one, 1..30).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(
                |(i, ((day, agent, hash, fileless, names), (c, m, verdict, machine, variant)))| {
                    let h = sha1(hash);
                    // As another producer would: the file by its SHA-256 alone (one time in
                    // four), which another incident may link to the SHA-1.
                    let sha256_only = names == 0 && !fileless;
                    let mut inc = incident(
                        &format!("{}", 1000 + i),
                        day,
                        &format!("ag{agent}"),
                        (!fileless && !sha256_only).then_some(h.as_str()),
                    );
                    if sha256_only {
                        inc.file.sha256 = Some(format!("{hash:064x}"));
                    }
                    if fileless {
                        inc.storyline = Some(format!("SL{hash}"));
                        inc.is_fileless = variant == 1;
                    }
                    inc.confidence_level = pick(CONFIDENCE, c);
                    inc.mitigation_status = pick(MITIGATION, m);
                    inc.analyst_verdict = pick(VERDICT, verdict);
                    inc.device.machine_type = pick(MACHINE, machine);
                    inc.threat_name = Some(format!("evil-{variant}.exe"));
                    inc.mitigation_actions = match variant {
                        0 => vec!["kill:success".into()],
                        1 => vec!["quarantine:failed".into(), "kill:success".into()],
                        _ => Vec::new(),
                    };
                    if variant == 2 {
                        inc.file.sha256 = Some(format!("{hash:064x}"));
                    }
                    inc
                },
            )
            .collect()
    })
}

/// What the domain alone says of each story: its members, criticality and summary.
#[derive(Debug, PartialEq, Eq)]
struct Told {
    members: Vec<String>,
    score: u8,
    reasons: Vec<String>,
    summary: String,
}

fn member_id<B: Backend>(f: &Fixture<B>, inc: &Incident) -> String {
    format!("{}:{}", f.connector, inc.external_id)
}

/// The stories of `incidents` by the domain's rules alone, by story id.
fn domain_stories<B: Backend>(f: &Fixture<B>, incidents: &[Incident]) -> BTreeMap<String, Told> {
    let by_member: BTreeMap<String, &Incident> =
        incidents.iter().map(|i| (member_id(f, i), i)).collect();
    let members: Vec<Member> = by_member
        .iter()
        .map(|(id, i)| Member::of_incident(id.clone(), i))
        .collect();
    let plans = correlate(&f.account, super::producer(), &members, &Policy::default());
    // The devices of the account with a story of each file, by the file's identity.
    let files = file_identities(&members);
    let mut devices: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in &plans {
        if let Some(h) = p.key.file_hash() {
            devices
                .entry(files.of(h))
                .or_default()
                .insert(p.key.agent.as_str());
        }
    }
    let count = |p: &StoryPlan| {
        p.key
            .file_hash()
            .map_or(1, |h| u32::try_from(devices[files.of(h)].len()).unwrap())
    };
    plans
        .iter()
        .map(|p| {
            // The plan lists its members in story order.
            let story: Vec<Incident> = p.members.iter().map(|m| by_member[m].clone()).collect();
            let facts = CriticalityFacts::from_incidents(&story, count(p)).unwrap();
            let c = criticality(&facts);
            let told = Told {
                members: story.iter().map(|i| i.external_id.clone()).collect(),
                score: c.score,
                reasons: c.reasons,
                summary: summary(&SummaryFacts::from_incidents(&story, count(p) - 1)),
            };
            (p.id.clone(), told)
        })
        .collect()
}

/// The stories the store tells, by story id.
async fn store_stories<B: Backend>(f: &Fixture<B>) -> BTreeMap<String, Told> {
    let assignment = f.assignment().await;
    let ids: BTreeSet<&String> = assignment.values().map(|(s, _)| s).collect();
    let mut out = BTreeMap::new();
    for id in ids {
        let d = f.story(id).await;
        let told = Told {
            members: f
                .all_incidents(&d)
                .await
                .iter()
                .map(|i| i.id.clone())
                .collect(),
            score: d.story.criticality,
            reasons: d.criticality_detail.reasons.clone(),
            summary: d.summary.clone(),
        };
        assert_eq!(
            d.story.criticality, d.criticality_detail.score,
            "the listed score is the detailed one"
        );
        out.insert(id.clone(), told);
    }
    out
}

/// The same random incidents, driven through the domain's rules alone and through the store
/// page by page, tell the same stories.
pub fn the_store_tells_the_stories_the_domain_tells<B: Backend>(backend: &B) {
    let config = ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        incidents in arb_incidents(),
        page_size in 1usize..8,
    )| {
        super::block_on(async {
            let f = Fixture::new(backend).await;
            for chunk in incidents.chunks(page_size) {
                f.store.commit_page(f.page(chunk.to_vec(), t0())).await.unwrap();
            }
            // The domain sees what the store sees: each threat as its raw JSON maps.
            let seen: Vec<Incident> = incidents.into_iter().map(|i| f.mapped(i)).collect();
            let expected = domain_stories(&f, &seen);
            let got = store_stories(&f).await;
            assert_eq!(got, expected);
        });
    });
}

/// Threats that differ only in the letter case of their vendor values tell the same stories,
/// with the same criticality, reasons and summary: a tenant that answers `MALICIOUS` is as
/// malicious as one that answers `malicious`.
pub async fn vendor_values_in_any_letter_case_tell_the_same_stories<B: Backend>(backend: &B) {
    let lower = Fixture::new(backend).await;
    let upper = Fixture::new(backend).await;
    let mut plain = Vec::new();
    let mut shouted = Vec::new();
    for (i, agent) in ["ag1", "ag1", "ag2"].into_iter().enumerate() {
        let mut inc = incident(
            &format!("{}", 10 + i),
            i64::try_from(i).unwrap(),
            agent,
            Some(&sha1(7)),
        );
        inc.confidence_level = Some("malicious".into());
        inc.mitigation_status = Some("not_mitigated".into());
        inc.analyst_verdict = Some("false_positive".into());
        inc.device.machine_type = Some("server".into());
        let mut loud = inc.clone();
        for v in [
            &mut loud.confidence_level,
            &mut loud.mitigation_status,
            &mut loud.analyst_verdict,
            &mut loud.device.machine_type,
        ] {
            *v = v.as_deref().map(str::to_uppercase);
        }
        plain.push(inc);
        shouted.push(loud);
    }
    lower
        .store
        .commit_page(lower.page(plain, t0()))
        .await
        .unwrap();
    upper
        .store
        .commit_page(upper.page(shouted, t0()))
        .await
        .unwrap();
    let (a, b) = (store_stories(&lower).await, store_stories(&upper).await);
    let a: Vec<&Told> = a.values().collect();
    let b: Vec<&Told> = b.values().collect();
    assert_eq!(a, b);
    // And the values were read, not ignored: malicious (7), not mitigated, recurred, an
    // outbreak over two devices, a server, a false positive in SentinelOne.
    let first = a.iter().find(|t| t.members.len() == 2).unwrap();
    assert_eq!(
        first.reasons,
        [
            "base 7: SentinelOne confidence malicious",
            "+1: not mitigated",
            "+1: recurred on this device (2 incidents)",
            "+1: outbreak, the same file is on 2 to 9 devices of the account",
            "+1: the device is a server",
            "-3: analyst verdict false positive in SentinelOne",
        ]
    );
    assert!(first.summary.contains("(malicious)"), "{}", first.summary);
    assert!(
        first.summary.contains(". The threat is not mitigated."),
        "{}",
        first.summary
    );
}
