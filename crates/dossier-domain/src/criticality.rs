//! Criticality of a story: a score from 1 to 10 and the reasons that produced it.
//!
//! This module is the one place the rule lives (PRODUCT.md, "Criticality and summary"). The rule
//! is explainable by construction: every factor that applies adds exactly one reason that names
//! the factor and its effect, so the story page can show why a story scores what it scores.
//!
//! # The rule
//!
//! | Factor | Effect | Reason |
//! |---|---|---|
//! | base, confidence malicious | 7 | `base 7: SentinelOne confidence malicious` |
//! | base, confidence suspicious | 5 | `base 5: SentinelOne confidence suspicious` |
//! | base, confidence n/a, other or none | 3 | `base 3: SentinelOne confidence n/a` (or `unknown`) |
//! | base, severity critical | 8 | `base 8: CrowdStrike severity critical` |
//! | base, severity high | 7 | `base 7: Microsoft Defender severity high` |
//! | base, severity medium | 5 | `base 5: … severity medium` |
//! | base, severity low, or none | 3 | `base 3: … severity low` (or `unknown`) |
//! | base, severity informational | 2 | `base 2: … severity informational` |
//! | not mitigated: any incident of the story | +1 | `+1: not mitigated`, or `+1: 5 of 48 incidents not mitigated` when only some are |
//! | recurrence: 2 or more incidents on the device | +1 | `+1: recurred on this device (N incidents)` |
//! | outbreak tier 1: the hash is on 2–9 devices | +1 | `+1: outbreak, the same file is on 2 to 9 devices of the account` |
//! | outbreak tier 2: the hash is on 10+ devices | +2 | `+2: wide outbreak, the same file is on 10 or more devices of the account` |
//! | the device is a server | +1 | `+1: the device is a server` |
//! | analyst verdict false positive | −3 | `-3: analyst verdict false positive in SentinelOne` |
//!
//! The base is the producer's own judgement, on the scale it judges by
//! ([`crate::Judged`]): SentinelOne's confidence, Defender's and CrowdStrike's severity. The two
//! scales meet where they mean the same: a malicious verdict and a high severity both start at 7.
//!
//! The reasons name the story's producer from data (`SentinelOne`, `Microsoft Defender`, …),
//! never a vendor written here.
//!
//! The factors are summed first and the total is clamped to 1..=10 once, at the end. Clamping
//! only at the end keeps the false-positive factor visible on a story whose aggravating factors
//! already exceed 10 (7 + 1 + 1 + 2 + 1 − 3 = 9, not 10 − 3 = 7). Clamping adds no reason: the
//! reasons list the factors, and the score is their clamped sum.
//!
//! The rule reads only the neutral vocabulary ([`crate::vocabulary`]): each source's mapper reads
//! its vendor's values whatever their letter case (samples carry both `malicious` and
//! `MALICIOUS`), so spelling never moves a score. The outbreak factor depends on the device count only through
//! [`outbreak_tier`], and its reason names the tier rather than the count, so a story's
//! criticality (score and reasons) changes only when its hash crosses a tier boundary and the
//! store refreshes the other stories of a hash only then.

use serde::{Deserialize, Serialize};

use crate::incident::{Incident, Producer};
use crate::vocabulary::{Confidence, DeviceKind, Judgement, ProducerVerdict, VendorSeverity};

/// Devices carrying a hash from which the same file counts as an outbreak (tier 1).
const OUTBREAK_DEVICES: u32 = 2;
/// Devices carrying a hash from which the outbreak counts as wide (tier 2). Ten machines with the
/// same detected file is well past one user's mistake in the accounts Dossier serves.
const WIDE_OUTBREAK_DEVICES: u32 = 10;

/// Facts about a story that criticality is computed from. A store builds them with
/// [`CriticalityFacts::new`] from what it aggregates over a story's incidents, or with
/// [`CriticalityFacts::from_incidents`] from the incidents themselves; both give the same facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriticalityFacts {
    /// Whose judgement the base is; the reasons name its vendor.
    pub producer: Producer,
    /// The producer's highest judgement across the story's incidents.
    pub judgement: Judgement,
    /// Number of the story's incidents that are not mitigated (see
    /// [`crate::vocabulary::Mitigation::is_unmitigated`]). Every incident counts, not the
    /// latest alone: a story whose latest threat was mitigated but an earlier one was not is
    /// not a mitigated story.
    pub unmitigated: u32,
    /// Number of incidents in the story (recurrence on the same device when > 1).
    pub incident_count: u32,
    /// Number of distinct devices in the account carrying the same file hash (1 = only this one).
    pub devices_with_hash: u32,
    /// The latest incident's device is a server.
    pub is_server: bool,
    /// The producer's analyst verdict is false positive on every incident of the story. Every,
    /// not the latest: a new occurrence nobody has reviewed yet must not inherit an earlier
    /// verdict and stay hidden at a lowered score.
    pub false_positive: bool,
}

/// What criticality takes from a story's latest incident (see [`latest_incident`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatestFacts {
    pub producer: Producer,
    /// Its device is a server.
    pub is_server: bool,
}

impl LatestFacts {
    /// Reads the facts of a story's latest incident.
    #[must_use]
    pub fn of(latest: &Incident) -> Self {
        Self {
            producer: latest.producer,
            is_server: latest.device.kind == DeviceKind::Server,
        }
    }
}

/// Returns whether an incident counts towards a story's "not mitigated" factor. A store may keep
/// it per incident and aggregate it with `sum` over the story.
#[must_use]
pub fn is_unmitigated(incident: &Incident) -> bool {
    incident.mitigation.is_unmitigated()
}

/// Returns whether an incident counts towards a story's "false positive in the producer"
/// factor. A store may keep it per incident and aggregate it with `min` over the story.
#[must_use]
pub fn is_false_positive(incident: &Incident) -> bool {
    incident.producer_verdict == ProducerVerdict::FalsePositive
}

/// A story's criticality: a score and the reasons that produced it, one per applied factor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criticality {
    /// From 1 (lowest) to 10 (highest).
    pub score: u8,
    /// Human sentences, base first, e.g. `base 7: SentinelOne confidence malicious`,
    /// `+1: not mitigated`.
    pub reasons: Vec<String>,
}

/// Computes a story's criticality from its facts, following the rule in the module doc.
#[must_use]
pub fn criticality(facts: &CriticalityFacts) -> Criticality {
    let vendor = facts.producer.vendor();
    let mut reasons = Vec::new();
    let base = base(facts.judgement);
    let mut total: i32 = base;
    reasons.push(format!(
        "base {base}: {vendor} {}",
        facts.judgement.describe()
    ));

    let mut apply = |delta: i32, why: String| {
        total += delta;
        let sign = if delta < 0 { '-' } else { '+' };
        reasons.push(format!("{sign}{}: {why}", delta.unsigned_abs()));
    };
    if facts.unmitigated > 0 {
        apply(
            1,
            unmitigated_reason(facts.unmitigated, facts.incident_count),
        );
    }
    if facts.incident_count >= 2 {
        apply(
            1,
            format!(
                "recurred on this device ({} incidents)",
                facts.incident_count
            ),
        );
    }
    match outbreak_tier(facts.devices_with_hash) {
        0 => {}
        1 => apply(
            1,
            format!(
                "outbreak, the same file is on {OUTBREAK_DEVICES} to {} devices of the account",
                WIDE_OUTBREAK_DEVICES - 1
            ),
        ),
        _ => apply(
            2,
            format!(
                "wide outbreak, the same file is on {WIDE_OUTBREAK_DEVICES} or more devices of \
                 the account"
            ),
        ),
    }
    if facts.is_server {
        apply(1, "the device is a server".to_owned());
    }
    if facts.false_positive {
        apply(-3, format!("analyst verdict false positive in {vendor}"));
    }

    // The clamp makes the value fit in 1..=10, so the conversion cannot fail.
    let score = u8::try_from(total.clamp(1, 10)).unwrap_or(1);
    Criticality { score, reasons }
}

/// Says how much of a story is not mitigated: `not mitigated` when all of it is (or one
/// incident), `5 of 48 incidents not mitigated` when only some are.
fn unmitigated_reason(unmitigated: u32, incident_count: u32) -> String {
    if unmitigated >= incident_count {
        "not mitigated".to_owned()
    } else {
        format!("{unmitigated} of {incident_count} incidents not mitigated")
    }
}

/// Returns the score a judgement starts a story at (the base rows of the rule).
fn base(judgement: Judgement) -> i32 {
    match judgement {
        Judgement::Confidence(Confidence::Malicious)
        | Judgement::Severity(Some(VendorSeverity::High)) => 7,
        Judgement::Confidence(Confidence::Suspicious)
        | Judgement::Severity(Some(VendorSeverity::Medium)) => 5,
        Judgement::Confidence(Confidence::NotApplicable | Confidence::Unknown)
        | Judgement::Severity(None | Some(VendorSeverity::Low)) => 3,
        Judgement::Severity(Some(VendorSeverity::Critical)) => 8,
        Judgement::Severity(Some(VendorSeverity::Informational)) => 2,
    }
}

/// Returns the outbreak tier of the number of devices in the account carrying a hash:
/// 0 for one device (or none), 1 for 2 to 9 devices, 2 for 10 devices or more.
///
/// Criticality depends on the device count only through this tier, so the store needs to
/// refresh the other stories of a hash only when the hash's tier changes.
#[must_use]
pub fn outbreak_tier(devices_with_hash: u32) -> u8 {
    match devices_with_hash {
        0..OUTBREAK_DEVICES => 0,
        OUTBREAK_DEVICES..WIDE_OUTBREAK_DEVICES => 1,
        _ => 2,
    }
}

impl CriticalityFacts {
    /// Builds the facts from what a store aggregates over a story's incidents: the latest
    /// incident's facts, the highest judgement, the count, how many incidents
    /// [`is_unmitigated`], and whether every incident [`is_false_positive`].
    #[must_use]
    pub fn new(
        latest: LatestFacts,
        judgement: Judgement,
        incident_count: u32,
        unmitigated: u32,
        all_false_positive: bool,
        devices_with_hash: u32,
    ) -> Self {
        Self {
            producer: latest.producer,
            judgement,
            unmitigated,
            incident_count,
            devices_with_hash,
            is_server: latest.is_server,
            false_positive: all_false_positive,
        }
    }

    /// Builds the facts of a story from its incidents, in story order (see
    /// [`latest_incident`]), and the number of distinct devices in the account carrying its
    /// hash. `None` for a story without incidents.
    #[must_use]
    pub fn from_incidents(incidents: &[Incident], devices_with_hash: u32) -> Option<Self> {
        let latest = latest_incident(incidents)?;
        Some(Self::new(
            LatestFacts::of(latest),
            highest_judgement(incidents)?,
            u32::try_from(incidents.len()).unwrap_or(u32::MAX),
            count_unmitigated(incidents),
            incidents.iter().all(is_false_positive),
            devices_with_hash,
        ))
    }
}

/// Returns the producer's highest judgement of a story's incidents (they share one producer,
/// so one scale); `None` for no incidents.
#[must_use]
pub fn highest_judgement<'a>(
    incidents: impl IntoIterator<Item = &'a Incident>,
) -> Option<Judgement> {
    incidents
        .into_iter()
        .map(Judgement::of)
        .reduce(Judgement::max)
}

/// Returns how many of a story's incidents [`is_unmitigated`].
#[must_use]
pub fn count_unmitigated<'a>(incidents: impl IntoIterator<Item = &'a Incident>) -> u32 {
    let n = incidents.into_iter().filter(|i| is_unmitigated(i)).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Compares two incidents of a story in story order: created first, and of incidents created
/// at the same instant, the smaller member id (the id a store knows the incident by, unique in
/// its account) first. Correlation orders a story's members this way, and a store that lists a
/// story's incidents lists them this way too.
#[must_use]
pub fn story_order(
    a: (chrono::DateTime<chrono::Utc>, &str),
    b: (chrono::DateTime<chrono::Utc>, &str),
) -> std::cmp::Ordering {
    a.cmp(&b)
}

/// Returns a story's latest incident: the last in story order (see [`story_order`]), which is
/// the one every story rule describes the story by (what it shows, criticality, summary).
#[must_use]
pub fn latest_incident<'a>(
    incidents_in_story_order: impl IntoIterator<Item = &'a Incident>,
) -> Option<&'a Incident> {
    // Not asserted: a store orders by the time as it stores it (to the microsecond), which may
    // tie where the mapped incidents' own times differ in their last digits.
    incidents_in_story_order.into_iter().last()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::producer::test_producer;
    use crate::vocabulary::Mitigation;
    use proptest::prelude::*;

    fn facts(confidence: Confidence) -> CriticalityFacts {
        CriticalityFacts {
            producer: test_producer(),
            judgement: Judgement::Confidence(confidence),
            unmitigated: 0,
            incident_count: 1,
            devices_with_hash: 1,
            is_server: false,
            false_positive: false,
        }
    }

    fn score(f: &CriticalityFacts) -> u8 {
        criticality(f).score
    }

    #[test]
    fn base_follows_severity_for_a_producer_that_judges_by_severity() {
        let with = |s| CriticalityFacts {
            judgement: Judgement::Severity(s),
            ..facts(Confidence::Unknown)
        };
        let cases = [
            (Some(VendorSeverity::Critical), 8, "severity critical"),
            (Some(VendorSeverity::High), 7, "severity high"),
            (Some(VendorSeverity::Medium), 5, "severity medium"),
            (Some(VendorSeverity::Low), 3, "severity low"),
            (None, 3, "severity unknown"),
            (
                Some(VendorSeverity::Informational),
                2,
                "severity informational",
            ),
        ];
        for (severity, base, words) in cases {
            assert_eq!(
                criticality(&with(severity)),
                Criticality {
                    score: base,
                    reasons: vec![format!("base {base}: TestVendor {words}")],
                }
            );
        }
    }

    #[test]
    fn base_follows_confidence() {
        assert_eq!(
            criticality(&facts(Confidence::Malicious)),
            Criticality {
                score: 7,
                reasons: vec!["base 7: TestVendor confidence malicious".into()]
            }
        );
        assert_eq!(
            criticality(&facts(Confidence::Suspicious)).reasons,
            ["base 5: TestVendor confidence suspicious"]
        );
        assert_eq!(
            criticality(&facts(Confidence::NotApplicable)).reasons,
            ["base 3: TestVendor confidence n/a"]
        );
        assert_eq!(
            criticality(&facts(Confidence::Unknown)).reasons,
            ["base 3: TestVendor confidence unknown"]
        );
        assert_eq!(score(&facts(Confidence::Suspicious)), 5);
        assert_eq!(score(&facts(Confidence::NotApplicable)), 3);
    }

    #[test]
    fn each_factor_moves_the_score_as_documented() {
        let base = facts(Confidence::Suspicious);
        let with = |f: fn(&mut CriticalityFacts)| {
            let mut x = base.clone();
            f(&mut x);
            criticality(&x)
        };
        let c = with(|f| f.unmitigated = 1);
        assert_eq!((c.score, c.reasons[1].as_str()), (6, "+1: not mitigated"));
        let c = with(|f| {
            f.unmitigated = 5;
            f.incident_count = 48;
        });
        assert_eq!(
            (c.score, c.reasons[1].as_str()),
            (7, "+1: 5 of 48 incidents not mitigated")
        );
        let c = with(|f| {
            f.unmitigated = 48;
            f.incident_count = 48;
        });
        assert_eq!((c.score, c.reasons[1].as_str()), (7, "+1: not mitigated"));
        let c = with(|f| f.incident_count = 3);
        assert_eq!(
            (c.score, c.reasons[1].as_str()),
            (6, "+1: recurred on this device (3 incidents)")
        );
        let c = with(|f| f.devices_with_hash = 4);
        assert_eq!(
            (c.score, c.reasons[1].as_str()),
            (
                6,
                "+1: outbreak, the same file is on 2 to 9 devices of the account"
            )
        );
        let c = with(|f| f.devices_with_hash = 10);
        assert_eq!(
            (c.score, c.reasons[1].as_str()),
            (
                7,
                "+2: wide outbreak, the same file is on 10 or more devices of the account"
            )
        );
        let c = with(|f| f.is_server = true);
        assert_eq!(
            (c.score, c.reasons[1].as_str()),
            (6, "+1: the device is a server")
        );
        let c = with(|f| f.false_positive = true);
        assert_eq!(
            (c.score, c.reasons[1].as_str()),
            (2, "-3: analyst verdict false positive in TestVendor")
        );
        assert!(with(|_| {}).reasons.len() == 1);
    }

    #[test]
    fn outbreak_tiers() {
        assert_eq!(
            [0, 1, 2, 9, 10, 11, u32::MAX].map(outbreak_tier),
            [0, 0, 1, 1, 2, 2, 2]
        );
    }

    #[test]
    fn clamps_to_ten_and_one_but_keeps_every_reason() {
        let worst = CriticalityFacts {
            unmitigated: 5,
            incident_count: 5,
            devices_with_hash: 50,
            is_server: true,
            ..facts(Confidence::Malicious)
        };
        let c = criticality(&worst);
        assert_eq!(c.score, 10, "7 + 1 + 1 + 2 + 1 = 12 clamps to 10");
        assert_eq!(c.reasons.len(), 5);
        // The false positive counts against the unclamped sum: 12 - 3 = 9.
        assert_eq!(
            score(&CriticalityFacts {
                false_positive: true,
                ..worst
            }),
            9
        );

        let c = criticality(&CriticalityFacts {
            false_positive: true,
            ..facts(Confidence::NotApplicable)
        });
        assert_eq!(c.score, 1, "3 - 3 = 0 clamps to 1");
        assert_eq!(
            c.reasons,
            [
                "base 3: TestVendor confidence n/a",
                "-3: analyst verdict false positive in TestVendor"
            ]
        );
    }

    pub(crate) fn incident(
        id: &str,
        day: u32,
        confidence: Confidence,
        verdict: ProducerVerdict,
    ) -> Incident {
        let t = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0).unwrap_or_default();
        Incident {
            producer: test_producer(),
            external_id: id.to_owned(),
            created_at: t,
            updated_at: t,
            device: crate::Device::default(),
            file: crate::FileInfo::default(),
            threat_name: None,
            classification: None,
            confidence_level: None,
            mitigation_status: None,
            analyst_verdict: None,
            confidence,
            mitigation: Mitigation::Mitigated,
            producer_verdict: verdict,
            severity: None,
            incident_status: None,
            engines: vec![],
            storyline: None,
            initiated_by: None,
            is_fileless: false,
            mitre: vec![],
            mitigation_actions: vec![],
            console_url: None,
            context: crate::context::Context::default(),
            raw: String::new(),
        }
    }

    #[test]
    fn facts_from_incidents_use_the_latest_and_the_highest() {
        let mut older = incident(
            "9",
            1,
            Confidence::Malicious,
            ProducerVerdict::FalsePositive,
        );
        older.mitigation = Mitigation::NotMitigated;
        let mut latest = incident(
            "10",
            5,
            Confidence::NotApplicable,
            ProducerVerdict::FalsePositive,
        );
        latest.device.kind = DeviceKind::Server;
        let mut incidents = vec![older, latest];
        let expected = CriticalityFacts {
            producer: test_producer(),
            judgement: Judgement::Confidence(Confidence::Malicious),
            unmitigated: 1,
            incident_count: 2,
            devices_with_hash: 3,
            is_server: true,
            false_positive: true,
        };
        assert_eq!(
            CriticalityFacts::from_incidents(&incidents, 3),
            Some(expected)
        );

        // One unreviewed occurrence keeps the story at full score.
        incidents.push(incident(
            "11",
            6,
            Confidence::Unknown,
            ProducerVerdict::Undefined,
        ));
        assert!(!CriticalityFacts::from_incidents(&incidents, 3).is_some_and(|f| f.false_positive));
        assert_eq!(CriticalityFacts::from_incidents(&[], 0), None);
    }

    /// Regression: a libprocesshider-style story whose early incidents were mitigated but a
    /// later one was not (or the reverse) scored by its latest incident alone, so a rootkit
    /// still loaded on the device lost its "+1: not mitigated".
    #[test]
    fn an_unmitigated_incident_counts_whichever_incident_it_is() {
        let story = |unmitigated: &[usize]| -> Vec<Incident> {
            (0..48)
                .map(|n| {
                    let mut i = incident(
                        &format!("{}", 100 + n),
                        u32::try_from(n).unwrap_or_default(),
                        Confidence::Malicious,
                        ProducerVerdict::Undefined,
                    );
                    if unmitigated.contains(&n) {
                        i.mitigation = Mitigation::NotMitigated;
                    }
                    i
                })
                .collect()
        };
        let reasons = |incidents: &[Incident]| {
            let facts = CriticalityFacts::from_incidents(incidents, 1);
            facts.map(|f| criticality(&f).reasons).unwrap_or_default()
        };
        // Early ones not mitigated, the latest mitigated.
        let early = story(&[3, 4, 5, 6, 7]);
        assert_eq!(
            reasons(&early),
            [
                "base 7: TestVendor confidence malicious",
                "+1: 5 of 48 incidents not mitigated",
                "+1: recurred on this device (48 incidents)",
            ]
        );
        // The latest alone not mitigated.
        assert_eq!(
            reasons(&story(&[47]))[1],
            "+1: 1 of 48 incidents not mitigated"
        );
        // All of them, and none.
        let all: Vec<usize> = (0..48).collect();
        assert_eq!(reasons(&story(&all))[1], "+1: not mitigated");
        assert_eq!(reasons(&story(&[])).len(), 2);
    }

    #[test]
    fn the_latest_incident_is_the_last_in_story_order() {
        let t = chrono::DateTime::from_timestamp(86_400, 0).unwrap_or_default();
        assert!(
            story_order((t, "c:10"), (t, "c:9")).is_lt(),
            "member ids compare as text"
        );
        assert!(story_order((t, "z:1"), (t + chrono::Duration::seconds(1), "a:1")).is_lt());
        let a = incident("1", 1, Confidence::Unknown, ProducerVerdict::Undefined);
        let b = incident("2", 2, Confidence::Malicious, ProducerVerdict::Undefined);
        let both = [a, b];
        assert_eq!(
            latest_incident(&both).map(|i| i.external_id.as_str()),
            Some("2")
        );
        assert_eq!(latest_incident(&[]), None);
    }

    fn arb_confidence() -> impl Strategy<Value = Confidence> {
        prop_oneof![
            Just(Confidence::Unknown),
            Just(Confidence::NotApplicable),
            Just(Confidence::Suspicious),
            Just(Confidence::Malicious),
        ]
    }

    fn arb_judgement() -> impl Strategy<Value = Judgement> {
        prop_oneof![
            arb_confidence().prop_map(Judgement::Confidence),
            (0..6i64).prop_map(|r| Judgement::from_rank(crate::Judged::BySeverity, r)),
        ]
    }

    fn arb_facts() -> impl Strategy<Value = CriticalityFacts> {
        (
            arb_judgement(),
            prop_oneof![0..3u32, any::<u32>()],
            any::<u32>(),
            prop_oneof![0..20u32, any::<u32>()],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(judgement, unmitigated, incident_count, devices_with_hash, is_server, fp)| {
                    CriticalityFacts {
                        producer: test_producer(),
                        judgement,
                        unmitigated,
                        incident_count,
                        devices_with_hash,
                        is_server,
                        false_positive: fp,
                    }
                },
            )
    }

    fn applied_factors(f: &CriticalityFacts) -> usize {
        [
            f.unmitigated > 0,
            f.incident_count >= 2,
            outbreak_tier(f.devices_with_hash) > 0,
            f.is_server,
            f.false_positive,
        ]
        .into_iter()
        .filter(|b| *b)
        .count()
    }

    proptest! {
        #[test]
        fn score_in_range_and_one_reason_per_factor(f in arb_facts()) {
            let c = criticality(&f);
            prop_assert!((1..=10).contains(&c.score));
            prop_assert_eq!(c.reasons.len(), applied_factors(&f) + 1);
            prop_assert_eq!(&c, &criticality(&f), "deterministic");
        }

        #[test]
        fn aggravating_factors_never_lower_the_score(f in arb_facts(), extra in 0..6usize) {
            let mut worse = f.clone();
            match extra {
                0 => worse.unmitigated = worse.unmitigated.max(1),
                1 => worse.incident_count = worse.incident_count.max(2),
                2 => worse.devices_with_hash = worse.devices_with_hash.saturating_add(5),
                3 => worse.is_server = true,
                4 => worse.judgement = worse.judgement.max(match worse.judgement {
                    Judgement::Confidence(_) => Judgement::Confidence(Confidence::Malicious),
                    Judgement::Severity(_) => Judgement::Severity(Some(VendorSeverity::Critical)),
                }),
                _ => worse.judgement = worse.judgement.max(match worse.judgement {
                    Judgement::Confidence(_) => Judgement::Confidence(Confidence::Suspicious),
                    Judgement::Severity(_) => Judgement::Severity(Some(VendorSeverity::Medium)),
                }),
            }
            prop_assert!(score(&worse) >= score(&f));
            let mut better = f.clone();
            better.false_positive = true;
            prop_assert!(score(&better) <= score(&f));
        }

        #[test]
        fn device_count_matters_only_through_the_tier(f in arb_facts(), other in any::<u32>()) {
            let moved = CriticalityFacts { devices_with_hash: other, ..f.clone() };
            if outbreak_tier(other) == outbreak_tier(f.devices_with_hash) {
                prop_assert_eq!(criticality(&moved), criticality(&f));
            }
        }
    }
}
