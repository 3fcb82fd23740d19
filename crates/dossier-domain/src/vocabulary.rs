//! The neutral vocabulary: what a producer's judgement of a threat means, whoever the producer.
//!
//! Each source's mapper turns its vendor's values (whatever their letter case) into these
//! values, and keeps the vendor's own text beside them for display. Every story rule reads these
//! values only, so two threats that differ only in how the vendor spelled a value give the same
//! stories, criticality, reasons and summary.

use serde::{Deserialize, Serialize};

use crate::producer::Judged;

/// How sure the producer is that the threat is malicious, lowest first (the order is the rank
/// a story's highest confidence is taken by).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The producer said nothing, or something no rule knows.
    #[default]
    Unknown,
    /// The producer said explicitly that it does not judge (SentinelOne's `n/a`).
    NotApplicable,
    Suspicious,
    Malicious,
}

impl Confidence {
    /// Returns the word the criticality reasons and the summary use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Unknown => "unknown",
            Confidence::NotApplicable => "n/a",
            Confidence::Suspicious => "suspicious",
            Confidence::Malicious => "malicious",
        }
    }

    /// Returns the rank a store keeps and aggregates with `max`: 0 to 3, lowest first.
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Confidence::Unknown => 0,
            Confidence::NotApplicable => 1,
            Confidence::Suspicious => 2,
            Confidence::Malicious => 3,
        }
    }

    /// The confidence of a rank given by [`Confidence::rank`]; anything else is `Unknown`.
    #[must_use]
    pub fn from_rank(rank: i64) -> Self {
        match rank {
            1 => Confidence::NotApplicable,
            2 => Confidence::Suspicious,
            3 => Confidence::Malicious,
            _ => Confidence::Unknown,
        }
    }
}

/// What the producer did about the threat, as far as a story's rules care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mitigation {
    /// No status, or one no rule knows: nobody has confirmed the threat as handled.
    #[default]
    Unknown,
    /// The producer says the threat is active or not mitigated.
    NotMitigated,
    /// The producer mitigated the threat (killed, quarantined, remediated, blocked).
    Mitigated,
    /// Someone marked the threat benign in the producer's console.
    MarkedBenign,
}

impl Mitigation {
    /// Returns whether the threat counts as not mitigated: anything but mitigated and marked
    /// benign, an unknown status included (a threat nobody has confirmed as handled is open).
    #[must_use]
    pub fn is_unmitigated(self) -> bool {
        !matches!(self, Mitigation::Mitigated | Mitigation::MarkedBenign)
    }
}

/// The verdict an analyst gave the threat in the producer's own console.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProducerVerdict {
    /// No verdict yet, or one no rule knows.
    #[default]
    Undefined,
    TruePositive,
    FalsePositive,
    Suspicious,
}

/// What kind of machine the device is, as far as a story's rules care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// The producer said nothing, or something no rule knows.
    #[default]
    Unknown,
    /// A desktop or a laptop.
    Workstation,
    Server,
    /// Another known kind: a container host, a storage appliance, a mobile device, …
    Other,
}

/// The severity a producer gives a threat, where it gives one (SentinelOne does not; Defender
/// and CrowdStrike do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorSeverity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl VendorSeverity {
    /// Returns the word the criticality reasons and the summary use.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            VendorSeverity::Informational => "informational",
            VendorSeverity::Low => "low",
            VendorSeverity::Medium => "medium",
            VendorSeverity::High => "high",
            VendorSeverity::Critical => "critical",
        }
    }
}

/// A producer's own judgement of a threat, on the scale it judges by ([`Judged`]): the value a
/// story's criticality starts from. A story's judgement is the highest of its incidents'; a store
/// keeps [`Judgement::rank`] per incident and aggregates it with `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Judgement {
    Confidence(Confidence),
    /// `None` when the producer gave no severity a rule knows.
    Severity(Option<VendorSeverity>),
}

impl Default for Judgement {
    /// Nothing judged, on the confidence scale (a story without incidents).
    fn default() -> Self {
        Judgement::Confidence(Confidence::Unknown)
    }
}

impl Judgement {
    /// Returns an incident's judgement on its producer's scale.
    #[must_use]
    pub fn of(incident: &crate::Incident) -> Self {
        match incident.producer.judged() {
            Judged::ByConfidence => Judgement::Confidence(incident.confidence),
            Judged::BySeverity => Judgement::Severity(incident.severity),
        }
    }

    /// Returns the rank a store keeps and aggregates with `max`, lowest first; it orders the
    /// judgements of one scale (a story's incidents share one producer, so one scale).
    #[must_use]
    pub fn rank(self) -> u8 {
        match self {
            Judgement::Confidence(c) => c.rank(),
            Judgement::Severity(None) => 0,
            Judgement::Severity(Some(s)) => match s {
                VendorSeverity::Informational => 1,
                VendorSeverity::Low => 2,
                VendorSeverity::Medium => 3,
                VendorSeverity::High => 4,
                VendorSeverity::Critical => 5,
            },
        }
    }

    /// The judgement of a rank given by [`Judgement::rank`] on a scale; anything else is the
    /// scale's unknown.
    #[must_use]
    pub fn from_rank(judged: Judged, rank: i64) -> Self {
        match judged {
            Judged::ByConfidence => Judgement::Confidence(Confidence::from_rank(rank)),
            Judged::BySeverity => Judgement::Severity(match rank {
                1 => Some(VendorSeverity::Informational),
                2 => Some(VendorSeverity::Low),
                3 => Some(VendorSeverity::Medium),
                4 => Some(VendorSeverity::High),
                5 => Some(VendorSeverity::Critical),
                _ => None,
            }),
        }
    }

    /// The higher of two judgements of one scale.
    #[must_use]
    pub fn max(self, other: Self) -> Self {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// Returns the judgement in words for the reasons: `confidence malicious`, `severity high`.
    #[must_use]
    pub fn describe(self) -> String {
        match self {
            Judgement::Confidence(c) => format!("confidence {}", c.as_str()),
            Judgement::Severity(s) => {
                format!("severity {}", s.map_or("unknown", VendorSeverity::as_str))
            }
        }
    }

    /// Returns what the summary says of the judgement, only when it is worth saying:
    /// `malicious`, `suspicious`, `high severity`; `None` for n/a, unknown or low.
    #[must_use]
    pub fn clause(self) -> Option<String> {
        match self {
            Judgement::Confidence(c @ (Confidence::Malicious | Confidence::Suspicious)) => {
                Some(c.as_str().to_owned())
            }
            Judgement::Severity(Some(
                s @ (VendorSeverity::Medium | VendorSeverity::High | VendorSeverity::Critical),
            )) => Some(format!("{} severity", s.as_str())),
            Judgement::Confidence(_) | Judgement::Severity(_) => None,
        }
    }
}

/// Matches a vendor's value against the spellings of each neutral value, ignoring letter case
/// and surrounding white space: `vendor_value(Some(" MALICIOUS "), &[("malicious",
/// Confidence::Malicious)])` is `Some(Confidence::Malicious)`. Each source lists its own
/// spellings; this is only the comparison, so that every source compares the same way.
#[must_use]
pub fn vendor_value<T: Copy>(value: Option<&str>, spellings: &[(&str, T)]) -> Option<T> {
    let value = value?.trim();
    spellings
        .iter()
        .find(|(spelling, _)| spelling.eq_ignore_ascii_case(value))
        .map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_ranks_round_trip_and_order() {
        for c in [
            Confidence::Unknown,
            Confidence::NotApplicable,
            Confidence::Suspicious,
            Confidence::Malicious,
        ] {
            assert_eq!(Confidence::from_rank(i64::from(c.rank())), c);
        }
        assert!(Confidence::Malicious > Confidence::Suspicious);
        assert!(Confidence::Suspicious > Confidence::NotApplicable);
        assert!(Confidence::NotApplicable > Confidence::Unknown);
        assert_eq!(Confidence::from_rank(-1), Confidence::Unknown);
        assert_eq!(Confidence::from_rank(4), Confidence::Unknown);
    }

    #[test]
    fn judgement_ranks_round_trip_on_each_scale() {
        let severities = [
            None,
            Some(VendorSeverity::Informational),
            Some(VendorSeverity::Low),
            Some(VendorSeverity::Medium),
            Some(VendorSeverity::High),
            Some(VendorSeverity::Critical),
        ];
        for (i, s) in severities.into_iter().enumerate() {
            let j = Judgement::Severity(s);
            assert_eq!(usize::from(j.rank()), i);
            assert_eq!(
                Judgement::from_rank(Judged::BySeverity, i64::from(j.rank())),
                j
            );
        }
        let high = Judgement::Severity(Some(VendorSeverity::High));
        let low = Judgement::Severity(Some(VendorSeverity::Low));
        assert_eq!(low.max(high), high);
        assert_eq!(high.max(low), high);
        assert_eq!(high.describe(), "severity high");
        assert_eq!(Judgement::Severity(None).describe(), "severity unknown");
        assert_eq!(high.clause().as_deref(), Some("high severity"));
        assert_eq!(low.clause(), None);
        let m = Judgement::Confidence(Confidence::Malicious);
        assert_eq!(Judgement::from_rank(Judged::ByConfidence, 3), m);
        assert_eq!(m.describe(), "confidence malicious");
        assert_eq!(m.clause().as_deref(), Some("malicious"));
    }

    #[test]
    fn only_mitigated_and_benign_count_as_handled() {
        assert!(Mitigation::Unknown.is_unmitigated());
        assert!(Mitigation::NotMitigated.is_unmitigated());
        assert!(!Mitigation::Mitigated.is_unmitigated());
        assert!(!Mitigation::MarkedBenign.is_unmitigated());
    }

    #[test]
    fn vendor_values_match_whatever_their_case() {
        let spellings = [("malicious", 2), ("n/a", 1)];
        assert_eq!(vendor_value(Some("MALICIOUS"), &spellings), Some(2));
        assert_eq!(vendor_value(Some(" Malicious\t"), &spellings), Some(2));
        assert_eq!(vendor_value(Some("N/A"), &spellings), Some(1));
        assert_eq!(vendor_value(Some("test"), &spellings), None);
        assert_eq!(vendor_value(None, &spellings), None);
    }
}
