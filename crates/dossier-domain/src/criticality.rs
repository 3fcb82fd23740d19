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
//! | base, confidence `malicious` | 7 | `base 7: SentinelOne confidence malicious` |
//! | base, confidence `suspicious` | 5 | `base 5: SentinelOne confidence suspicious` |
//! | base, confidence `n/a`, other or none | 3 | `base 3: SentinelOne confidence n/a` (or `unknown`) |
//! | not mitigated | +1 | `+1: not mitigated` |
//! | recurrence: 2 or more incidents on the device | +1 | `+1: recurred on this device (N incidents)` |
//! | outbreak tier 1: the hash is on 2–9 devices | +1 | `+1: outbreak, the same file is on 2 to 9 devices of the account` |
//! | outbreak tier 2: the hash is on 10+ devices | +2 | `+2: wide outbreak, the same file is on 10 or more devices of the account` |
//! | the device is a server | +1 | `+1: the device is a server` |
//! | analyst verdict false positive | −3 | `-3: analyst verdict false positive in SentinelOne` |
//!
//! The factors are summed first and the total is clamped to 1..=10 once, at the end. Clamping
//! only at the end keeps the false-positive factor visible on a story whose aggravating factors
//! already exceed 10 (7 + 1 + 1 + 2 + 1 − 3 = 9, not 10 − 3 = 7). Clamping adds no reason: the
//! reasons list the factors, and the score is their clamped sum.
//!
//! Confidence is matched case-insensitively after trimming (samples carry both `malicious` and
//! `MALICIOUS`). The outbreak factor depends on the device count only through
//! [`outbreak_tier`], and its reason names the tier rather than the count, so a story's
//! criticality (score and reasons) changes only when its hash crosses a tier boundary and the
//! store refreshes the other stories of a hash only then.

use serde::{Deserialize, Serialize};

use crate::incident::Incident;

/// Devices carrying a hash from which the same file counts as an outbreak (tier 1).
const OUTBREAK_DEVICES: u32 = 2;
/// Devices carrying a hash from which the outbreak counts as wide (tier 2). Ten machines with the
/// same detected file is well past one user's mistake in the accounts Dossier serves.
const WIDE_OUTBREAK_DEVICES: u32 = 10;

/// Facts about a story that criticality is computed from (the store fills it in, or builds it
/// with [`CriticalityFacts::from_incidents`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CriticalityFacts {
    /// Highest confidence across the story's incidents: `malicious` > `suspicious` > `n/a`/`None`
    /// (see [`confidence_rank`]).
    pub confidence: Option<String>,
    /// True when the latest incident's mitigation status is neither `mitigated` nor
    /// `marked_as_benign` (see [`is_unmitigated`]).
    pub unmitigated: bool,
    /// Number of incidents in the story (recurrence on the same device when > 1).
    pub incident_count: u32,
    /// Number of distinct devices in the account carrying the same file hash (1 = only this one).
    pub devices_with_hash: u32,
    /// The device is a server (machine type `server`).
    pub is_server: bool,
    /// The producer's analyst verdict is `false_positive` on every incident of the story. Every,
    /// not the latest: a new occurrence nobody has reviewed yet must not inherit an earlier
    /// verdict and stay hidden at a lowered score.
    pub false_positive: bool,
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
    let mut reasons = Vec::new();
    let (base, label) = match confidence_rank(facts.confidence.as_deref()) {
        2 => (7, "malicious"),
        1 => (5, "suspicious"),
        _ if facts
            .confidence
            .as_deref()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case("n/a")) =>
        {
            (3, "n/a")
        }
        _ => (3, "unknown"),
    };
    let mut total: i32 = base;
    reasons.push(format!("base {base}: SentinelOne confidence {label}"));

    let mut apply = |delta: i32, why: String| {
        total += delta;
        let sign = if delta < 0 { '-' } else { '+' };
        reasons.push(format!("{sign}{}: {why}", delta.unsigned_abs()));
    };
    if facts.unmitigated {
        apply(1, "not mitigated".to_owned());
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
        apply(
            -3,
            "analyst verdict false positive in SentinelOne".to_owned(),
        );
    }

    // The clamp makes the value fit in 1..=10, so the conversion cannot fail.
    let score = u8::try_from(total.clamp(1, 10)).unwrap_or(1);
    Criticality { score, reasons }
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

/// Ranks a confidence level: 2 for `malicious`, 1 for `suspicious`, 0 for `n/a`, anything else
/// or none. Case-insensitive. Use it to pick a story's highest confidence.
#[must_use]
pub fn confidence_rank(confidence: Option<&str>) -> u8 {
    match confidence.map(str::trim) {
        Some(c) if c.eq_ignore_ascii_case("malicious") => 2,
        Some(c) if c.eq_ignore_ascii_case("suspicious") => 1,
        _ => 0,
    }
}

/// Returns whether a mitigation status counts as not mitigated: anything but `mitigated` and
/// `marked_as_benign`, including an unknown or missing status (a threat nobody has confirmed
/// as handled is treated as open). Case-insensitive.
#[must_use]
pub fn is_unmitigated(mitigation_status: Option<&str>) -> bool {
    !matches!(
        mitigation_status
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref(),
        Some("mitigated" | "marked_as_benign")
    )
}

impl CriticalityFacts {
    /// Builds the facts of a story from its incidents and the number of distinct devices in the
    /// account carrying its hash. The latest incident is the one created last (ties broken by
    /// the later update, then by the numerically larger external id), so the result does not
    /// depend on the order of `incidents`.
    #[must_use]
    pub fn from_incidents(incidents: &[Incident], devices_with_hash: u32) -> Self {
        let latest = latest_incident(incidents);
        // Canonical spellings, so the result does not depend on which incident said it first.
        let confidences = || incidents.iter().map(|i| i.confidence_level.as_deref());
        let confidence = match confidences().map(confidence_rank).max() {
            Some(2) => Some("malicious"),
            Some(1) => Some("suspicious"),
            _ if confidences()
                .flatten()
                .any(|c| c.trim().eq_ignore_ascii_case("n/a")) =>
            {
                Some("n/a")
            }
            _ => None,
        }
        .map(str::to_owned);
        Self {
            confidence,
            unmitigated: latest.is_some_and(|i| is_unmitigated(i.mitigation_status.as_deref())),
            incident_count: u32::try_from(incidents.len()).unwrap_or(u32::MAX),
            devices_with_hash,
            is_server: latest.is_some_and(|i| {
                i.device
                    .machine_type
                    .as_deref()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("server"))
            }),
            false_positive: !incidents.is_empty()
                && incidents.iter().all(|i| {
                    i.analyst_verdict
                        .as_deref()
                        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false_positive"))
                }),
        }
    }
}

/// Returns the latest incident: created last, then updated last, then the larger external id
/// (the producer's ids are decimal strings longer than `u64`, so they compare by length first).
pub(crate) fn latest_incident(incidents: &[Incident]) -> Option<&Incident> {
    incidents.iter().max_by(|a, b| {
        (
            a.created_at,
            a.updated_at,
            a.external_id.len(),
            &a.external_id,
        )
            .cmp(&(
                b.created_at,
                b.updated_at,
                b.external_id.len(),
                &b.external_id,
            ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn facts(confidence: &str) -> CriticalityFacts {
        CriticalityFacts {
            confidence: Some(confidence.to_owned()),
            incident_count: 1,
            devices_with_hash: 1,
            ..CriticalityFacts::default()
        }
    }

    fn score(f: &CriticalityFacts) -> u8 {
        criticality(f).score
    }

    #[test]
    fn base_follows_confidence() {
        assert_eq!(
            criticality(&facts("malicious")),
            Criticality {
                score: 7,
                reasons: vec!["base 7: SentinelOne confidence malicious".into()]
            }
        );
        assert_eq!(
            criticality(&facts("suspicious")).reasons,
            ["base 5: SentinelOne confidence suspicious"]
        );
        assert_eq!(
            criticality(&facts("n/a")).reasons,
            ["base 3: SentinelOne confidence n/a"]
        );
        assert_eq!(
            criticality(&CriticalityFacts::default()).reasons,
            ["base 3: SentinelOne confidence unknown"]
        );
        assert_eq!(
            criticality(&facts("test")).reasons,
            ["base 3: SentinelOne confidence unknown"]
        );
        assert_eq!(score(&facts(" MALICIOUS ")), 7);
        assert_eq!(score(&facts("suspicious")), 5);
        assert_eq!(score(&facts("n/a")), 3);
    }

    #[test]
    fn each_factor_moves_the_score_as_documented() {
        let base = facts("suspicious");
        let with = |f: fn(&mut CriticalityFacts)| {
            let mut x = base.clone();
            f(&mut x);
            criticality(&x)
        };
        let c = with(|f| f.unmitigated = true);
        assert_eq!((c.score, c.reasons[1].as_str()), (6, "+1: not mitigated"));
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
            (2, "-3: analyst verdict false positive in SentinelOne")
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
            confidence: Some("malicious".into()),
            unmitigated: true,
            incident_count: 5,
            devices_with_hash: 50,
            is_server: true,
            false_positive: false,
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
            ..facts("n/a")
        });
        assert_eq!(c.score, 1, "3 - 3 = 0 clamps to 1");
        assert_eq!(
            c.reasons,
            [
                "base 3: SentinelOne confidence n/a",
                "-3: analyst verdict false positive in SentinelOne"
            ]
        );
    }

    #[test]
    fn helpers_classify_producer_values() {
        assert_eq!(confidence_rank(Some("Malicious")), 2);
        assert_eq!(confidence_rank(Some("suspicious")), 1);
        assert_eq!(confidence_rank(Some("n/a")), 0);
        assert_eq!(confidence_rank(None), 0);
        assert!(is_unmitigated(Some("not_mitigated")));
        assert!(is_unmitigated(None));
        assert!(!is_unmitigated(Some("mitigated")));
        assert!(!is_unmitigated(Some("marked_as_benign")));
    }

    fn incident(id: &str, day: u32, confidence: Option<&str>, verdict: &str) -> Incident {
        let t = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0).unwrap_or_default();
        Incident {
            producer: crate::Producer::SentinelOne,
            external_id: id.to_owned(),
            created_at: t,
            updated_at: t,
            device: crate::Device::default(),
            file: crate::FileInfo::default(),
            threat_name: None,
            classification: None,
            confidence_level: confidence.map(str::to_owned),
            mitigation_status: Some("mitigated".into()),
            analyst_verdict: Some(verdict.into()),
            incident_status: None,
            engines: vec![],
            storyline: None,
            initiated_by: None,
            is_fileless: false,
            mitre: vec![],
            mitigation_actions: vec![],
            raw: String::new(),
        }
    }

    #[test]
    fn facts_from_incidents_use_the_latest_and_the_highest() {
        let mut older = incident("9", 1, Some("MALICIOUS"), "false_positive");
        older.mitigation_status = Some("not_mitigated".into());
        let mut latest = incident("10", 5, Some("n/a"), "false_positive");
        latest.device.machine_type = Some("server".into());
        let mut incidents = vec![older, latest];
        let expected = CriticalityFacts {
            confidence: Some("malicious".into()),
            unmitigated: false,
            incident_count: 2,
            devices_with_hash: 3,
            is_server: true,
            false_positive: true,
        };
        assert_eq!(CriticalityFacts::from_incidents(&incidents, 3), expected);
        incidents.reverse();
        assert_eq!(
            CriticalityFacts::from_incidents(&incidents, 3),
            expected,
            "order-independent"
        );

        // One unreviewed occurrence keeps the story at full score.
        incidents.push(incident("11", 6, None, "undefined"));
        assert!(!CriticalityFacts::from_incidents(&incidents, 3).false_positive);

        // Same creation time: the numerically larger id (longer string) is the latest.
        let mut a = incident("99", 1, None, "undefined");
        a.mitigation_status = Some("not_mitigated".into());
        let b = incident("100", 1, Some("n/a"), "undefined");
        let facts = CriticalityFacts::from_incidents(&[b.clone(), a.clone()], 1);
        assert_eq!(facts, CriticalityFacts::from_incidents(&[a, b], 1));
        assert!(!facts.unmitigated);
        assert_eq!(facts.confidence.as_deref(), Some("n/a"));

        assert_eq!(
            CriticalityFacts::from_incidents(&[], 0),
            CriticalityFacts::default()
        );
    }

    fn arb_facts() -> impl Strategy<Value = CriticalityFacts> {
        (
            prop_oneof![
                Just(None),
                Just(Some("malicious".to_owned())),
                Just(Some("suspicious".to_owned())),
                Just(Some("n/a".to_owned())),
                any::<String>().prop_map(Some),
            ],
            any::<bool>(),
            any::<u32>(),
            prop_oneof![0..20u32, any::<u32>()],
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(confidence, unmitigated, incident_count, devices_with_hash, is_server, fp)| {
                    CriticalityFacts {
                        confidence,
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
            f.unmitigated,
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
                0 => worse.unmitigated = true,
                1 => worse.incident_count = worse.incident_count.max(2),
                2 => worse.devices_with_hash = worse.devices_with_hash.saturating_add(5),
                3 => worse.is_server = true,
                4 => worse.confidence = Some("malicious".into()),
                _ => if confidence_rank(worse.confidence.as_deref()) == 0 {
                    worse.confidence = Some("suspicious".into());
                },
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
