#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::producer::test_producer;

fn t(days: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(days)
}

fn m(id: &str, day: i64, agent: &str, sha1: Option<&str>, sha256: Option<&str>) -> Member {
    Member {
        id: id.into(),
        created_at: t(day),
        agent: Some(agent.into()),
        sha1: sha1.map(Into::into),
        sha256: sha256.map(Into::into),
        md5: None,
        storyline: None,
    }
}

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const C: &str = "cccccccccccccccccccccccccccccccccccccccc";
/// An MD5: the key only of a threat without SHA-1 or SHA-256.
const M: &str = "dddddddddddddddddddddddddddddddd";

fn groups(plans: &[StoryPlan]) -> BTreeSet<Vec<String>> {
    plans.iter().map(|p| p.members.clone()).collect()
}

#[test]
fn same_agent_and_hash_within_90_days_is_one_story() {
    let ms = [
        m("1", 0, "ag", Some(A), None),
        m("2", 30, "ag", Some(A), None),
        m("3", 90, "ag", Some(A), None),
    ];
    let plans = correlate("acc", test_producer(), &ms, &Policy::default());
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].members, vec!["1", "2", "3"]);
    assert_eq!(plans[0].key.encode(), format!("hash:ag:{A}"));
}

#[test]
fn an_incident_past_the_window_starts_a_linked_story() {
    let ms = [
        m("1", 0, "ag", Some(A), None),
        m("2", 91, "ag", Some(A), None),
    ];
    let plans = correlate("acc", test_producer(), &ms, &Policy::default());
    assert_eq!(plans.len(), 2);
    let second = plans.iter().find(|p| p.members == ["2"]).unwrap();
    let first = plans.iter().find(|p| p.members == ["1"]).unwrap();
    assert_eq!(second.previous.as_deref(), Some(first.id.as_str()));
    assert_eq!(first.previous, None);
}

#[test]
fn other_agents_and_other_hashes_are_other_stories() {
    let ms = [
        m("1", 0, "ag", Some(A), None),
        m("2", 0, "other", Some(A), None),
        m("3", 0, "ag", Some(C), None),
    ];
    assert_eq!(
        correlate("acc", test_producer(), &ms, &Policy::default()).len(),
        3
    );
}

#[test]
fn an_md5_keys_a_story_only_when_there_is_no_sha1_or_sha256() {
    let md5 = |id: &str, sha1: Option<&str>| Member {
        md5: Some(M.into()),
        ..m(id, 0, "ag", sha1, None)
    };
    let ms = [md5("1", None), md5("2", None), md5("3", Some(A))];
    let plans = correlate("acc", test_producer(), &ms, &Policy::default());
    assert_eq!(
        groups(&plans),
        BTreeSet::from([vec!["1".to_owned(), "2".to_owned()], vec!["3".to_owned()]])
    );
    let keys: BTreeSet<String> = plans.iter().map(|p| p.key.encode()).collect();
    assert_eq!(
        keys,
        BTreeSet::from([format!("hash:ag:{M}"), format!("hash:ag:{A}")])
    );
}

#[test]
fn sha256_is_an_alias_of_sha1() {
    let ms = [
        m("1", 0, "ag", None, Some(B)),
        m("2", 1, "ag", Some(A), Some(B)),
        m("3", 2, "ag", Some(A), None),
    ];
    let plans = correlate("acc", test_producer(), &ms, &Policy::default());
    assert_eq!(plans.len(), 1, "{plans:?}");
    assert_eq!(plans[0].key.value, A, "the sha1 is the canonical key");
    // Without the linking threat, the sha256-only threat is a story of its own.
    let plans = correlate(
        "acc",
        test_producer(),
        &[ms[0].clone(), ms[2].clone()],
        &Policy::default(),
    );
    assert_eq!(plans.len(), 2);
}

#[test]
fn two_sha1s_linked_through_a_sha256_key_on_the_smaller() {
    // Whichever is seen first, the key is the smallest sha1 of the linked hashes.
    for ms in [
        [
            m("1", 0, "ag", Some(C), Some(B)),
            m("2", 1, "ag", Some(A), Some(B)),
        ],
        [
            m("1", 0, "ag", Some(A), Some(B)),
            m("2", 1, "ag", Some(C), Some(B)),
        ],
    ] {
        let plans = correlate("acc", test_producer(), &ms, &Policy::default());
        assert_eq!(plans.len(), 1, "{plans:?}");
        assert_eq!(plans[0].key.value, A);
    }
}

#[test]
fn fileless_threats_correlate_on_storyline_else_alone() {
    let mut a = m("1", 0, "ag", None, None);
    a.storyline = Some("S1".into());
    let mut b = m("2", 1, "ag", None, None);
    b.storyline = Some("S1".into());
    let c = m("3", 1, "ag", None, None);
    let d = m("4", 1, "ag", None, None);
    let plans = correlate("acc", test_producer(), &[a, b, c, d], &Policy::default());
    assert_eq!(
        groups(&plans),
        BTreeSet::from([
            vec!["1".into(), "2".into()],
            vec!["3".into()],
            vec!["4".into()]
        ])
    );
    assert!(plans.iter().any(|p| p.key.kind == KeyKind::Storyline));
}

#[test]
fn no_agent_means_a_story_of_its_own() {
    let mut a = m("1", 0, "", Some(A), None);
    a.agent = None;
    let mut b = m("2", 0, "", Some(A), None);
    b.agent = None;
    assert_eq!(
        correlate("acc", test_producer(), &[a, b], &Policy::default()).len(),
        2
    );
}

#[test]
fn the_cap_overflows_into_a_linked_story() {
    let policy = Policy {
        cap: 2,
        ..Policy::default()
    };
    let ms: Vec<Member> = (0..5)
        .map(|i| m(&format!("{i}"), i, "ag", Some(A), None))
        .collect();
    let plans = correlate("acc", test_producer(), &ms, &policy);
    assert_eq!(plans.len(), 3);
    assert!(plans.iter().all(|p| p.members.len() <= 2));
    assert_eq!(plans.iter().filter(|p| p.previous.is_none()).count(), 1);
}

#[test]
fn story_ids_depend_on_account() {
    let ms = [m("1", 0, "ag", Some(A), None)];
    let a = correlate("acc1", test_producer(), &ms, &Policy::default());
    let b = correlate("acc2", test_producer(), &ms, &Policy::default());
    assert_ne!(a[0].id, b[0].id);
    assert_eq!(a[0].id.len(), 32);
    assert!(
        a[0].id.starts_with(&format!("{:010x}", t(0).timestamp())),
        "ids start with the first incident's time"
    );
}

#[test]
fn reopen_threshold_is_inclusive() {
    let p = Policy::default();
    assert!(!should_reopen(t(0), t(0) + Duration::hours(11), &p));
    assert!(should_reopen(t(0), t(0) + Duration::hours(12), &p));
}

#[test]
fn terms_link_sha1_and_sha256() {
    let terms = terms(&m("1", 0, "ag", Some(A), Some(B)));
    assert_eq!(terms.len(), 2);
    assert!(super::terms(&Member {
        agent: None,
        ..m("1", 0, "", Some(A), None)
    })
    .is_empty());
}

fn arb_member() -> impl Strategy<Value = Member> {
    let some = |h: &str| Some(h.to_owned());
    let hash = prop_oneof![
        Just((some(A), None, None)),
        Just((None, some(B), None)),
        Just((some(A), some(B), None)),
        Just((some(C), None, None)),
        Just((None, None, None)),
        Just((None, None, some(M))),
        Just((some(A), None, some(M))),
    ];
    (
        0i64..400,
        prop_oneof![
            Just(Some("ag1".to_owned())),
            Just(Some("ag2".to_owned())),
            Just(None)
        ],
        hash,
        prop_oneof![
            Just(None),
            Just(Some("S1".to_owned())),
            Just(Some("S2".to_owned()))
        ],
    )
        .prop_map(|(day, agent, (sha1, sha256, md5), storyline)| Member {
            id: String::new(),
            created_at: t(0) + Duration::hours(day * 6),
            agent,
            sha1,
            sha256,
            md5,
            storyline,
        })
}

fn arb_members() -> impl Strategy<Value = Vec<Member>> {
    prop::collection::vec(arb_member(), 0..60).prop_map(|ms| {
        ms.into_iter()
            .enumerate()
            .map(|(i, mut m)| {
                m.id = format!("c:{i}");
                m
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn every_member_is_in_exactly_one_story(ms in arb_members()) {
        let policy = Policy { cap: 4, window: Duration::days(30), ..Policy::default() };
        let plans = correlate("acc", test_producer(), &ms, &policy);
        let mut seen = BTreeMap::new();
        for p in &plans {
            for id in &p.members {
                prop_assert!(seen.insert(id.clone(), p.id.clone()).is_none(), "{id} twice");
            }
            prop_assert!(p.members.len() <= policy.cap);
            prop_assert!(p.last_at - p.first_at <= policy.window);
        }
        prop_assert_eq!(seen.len(), ms.len());
        let ids: BTreeSet<&String> = plans.iter().map(|p| &p.id).collect();
        prop_assert_eq!(ids.len(), plans.len(), "story ids are unique");
    }

    #[test]
    fn any_permutation_gives_the_same_stories(ms in arb_members(), seed in any::<u64>()) {
        let policy = Policy { cap: 4, window: Duration::days(30), ..Policy::default() };
        let a = correlate("acc", test_producer(), &ms, &policy);
        let mut shuffled = ms.clone();
        // A deterministic shuffle from the seed.
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            shuffled.swap(i, usize::try_from(s >> 33).unwrap_or(0) % (i + 1));
        }
        let b = correlate("acc", test_producer(), &shuffled, &policy);
        prop_assert_eq!(a, b);
    }

    #[test]
    fn reingesting_changes_nothing(ms in arb_members()) {
        let policy = Policy::default();
        let once = correlate("acc", test_producer(), &ms, &policy);
        let mut twice = ms.clone();
        twice.extend(ms.iter().cloned());
        prop_assert_eq!(once, correlate("acc", test_producer(), &twice, &policy));
    }

    #[test]
    fn members_sharing_a_story_share_a_term_chain(ms in arb_members()) {
        // Stories never join members that no chain of lookup terms connects: this is what lets
        // the store hand correlation only the closure of a batch's terms.
        let plans = correlate("acc", test_producer(), &ms, &Policy::default());
        let by_id: BTreeMap<&str, &Member> = ms.iter().map(|m| (m.id.as_str(), m)).collect();
        for p in plans.iter().filter(|p| p.members.len() > 1) {
            let mut reached: BTreeSet<Term> = terms(by_id[p.members[0].as_str()]).into_iter().collect();
            loop {
                let before = reached.len();
                // The chain may pass through members of other stories (an alias link).
                for other in &ms {
                    let ts = terms(other);
                    if ts.iter().any(|x| reached.contains(x)) {
                        reached.extend(ts);
                    }
                }
                if reached.len() == before { break; }
            }
            for id in &p.members {
                prop_assert!(terms(by_id[id.as_str()]).iter().any(|x| reached.contains(x)));
            }
        }
    }
}

#[test]
fn terms_carry_the_kind_of_their_hash_and_match_as_documented() {
    let both = m("1", 0, "ag", Some(A), Some(B));
    let kinds: Vec<HashKind> = terms(&both)
        .iter()
        .filter_map(|t| match t {
            Term::Hash { kind, .. } => Some(*kind),
            Term::Storyline { .. } => None,
        })
        .collect();
    assert_eq!(kinds, [HashKind::Sha1, HashKind::Sha256]);

    // An MD5 term matches only incidents whose MD5 is their only hash.
    let md5_only = Member {
        md5: Some(M.into()),
        ..m("2", 0, "ag", None, None)
    };
    let md5_and_sha1 = Member {
        md5: Some(M.into()),
        ..m("3", 0, "ag", Some(C), None)
    };
    let md5_term = Term::Hash {
        agent: "ag".into(),
        kind: HashKind::Md5,
        hash: M.into(),
    };
    assert_eq!(terms(&md5_only), std::slice::from_ref(&md5_term));
    assert!(md5_term.matches(&md5_only));
    assert!(!md5_term.matches(&md5_and_sha1));

    // A storyline term matches only incidents with no hash at all, on the same agent.
    let fileless = Member {
        storyline: Some("SL".into()),
        ..m("4", 0, "ag", None, None)
    };
    let hashed = Member {
        storyline: Some("SL".into()),
        ..m("5", 0, "ag", Some(A), None)
    };
    let sl = Term::Storyline {
        agent: "ag".into(),
        storyline: "SL".into(),
    };
    assert!(sl.matches(&fileless));
    assert!(!sl.matches(&hashed));
    assert!(!sl.matches(&Member {
        agent: Some("other".into()),
        ..fileless
    }));
}

#[test]
fn a_story_reopens_only_when_closed_long_enough_and_something_new_arrived() {
    use crate::story::Status;
    let policy = Policy::default();
    let closed = Some(t(0));
    let later = t(0) + Duration::hours(12);
    let sooner = t(0) + Duration::hours(11);
    assert!(reopens(Status::Closed, closed, true, later, &policy));
    assert!(!reopens(Status::Closed, closed, true, sooner, &policy));
    assert!(!reopens(Status::Closed, closed, false, later, &policy));
    assert!(!reopens(Status::Monitoring, closed, true, later, &policy));
    assert!(!reopens(Status::Closed, None, true, later, &policy));
    assert_eq!(
        policy.reopen_text(),
        "a new incident arrived 12 hours or more after the story was closed"
    );
}

#[test]
fn a_story_left_without_incidents_retires_into_the_one_most_of_them_joined() {
    let plan = |id: &str, members: &[&str]| StoryPlan {
        id: id.into(),
        key: StoryKey {
            kind: KeyKind::Hash,
            agent: "ag".into(),
            value: A.into(),
        },
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        first_at: t(0),
        last_at: t(0),
        previous: None,
    };
    let plans = [
        plan("new1", &["1", "2"]),
        plan("new2", &["3"]),
        plan("kept", &["4"]),
    ];
    let before = [
        ("1", "old"),
        ("2", "old"),
        ("3", "old"),
        ("4", "kept"),
        ("5", "gone"),
    ];
    assert_eq!(
        retirements(before, &plans),
        [Retirement {
            retired: "old".into(),
            successor: "new1".into()
        }]
    );
    // Of successors equally many, the smaller id.
    let before = [("1", "old"), ("3", "old")];
    let plans = [plan("b", &["1"]), plan("a", &["3"])];
    assert_eq!(retirements(before, &plans)[0].successor, "a");
}

#[test]
fn a_version_is_new_unchanged_in_place_or_rekeyed() {
    let was = m("c:1", 0, "ag", Some(A), None);
    let now = t(1);
    assert_eq!(arrival(None, now, &was), Arrival::New);
    assert_eq!(arrival(Some((now, &was)), now, &was), Arrival::Unchanged);
    assert_eq!(
        arrival(Some((t(2), &was)), now, &was),
        Arrival::Unchanged,
        "an older version never overwrites a newer one"
    );
    assert_eq!(arrival(Some((t(0), &was)), now, &was), Arrival::InPlace);
    let hashed_again = Member {
        sha256: Some(B.into()),
        ..was.clone()
    };
    assert_eq!(
        arrival(Some((t(0), &was)), now, &hashed_again),
        Arrival::Rekeyed
    );
}
