//! Story vocabulary: the analyst-facing state of a story, and the rules of its triage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal as $label:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order the Workbench lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// Returns the stable name used in the API and the database.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Returns the word people read, where the API says the stable name.
            #[must_use]
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            /// Parses the stable name.
            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// Where a story stands in the analyst workflow.
    Status {
        Open => "open" as "Open",
        PendingAnalysis => "pending_analysis" as "Pending analysis",
        PendingMoreInfo => "pending_more_info" as "Pending more info",
        Monitoring => "monitoring" as "Monitoring",
        Closed => "closed" as "Closed",
        Reopened => "reopened" as "Reopened",
    }
);

string_enum!(
    /// The analyst's verdict on a story.
    Verdict {
        Suspicious => "suspicious" as "Suspicious",
        Malicious => "malicious" as "Malicious",
        Informational => "informational" as "Informational",
        Benign => "benign" as "Benign",
    }
);

string_enum!(
    /// Severity, which only a `malicious` verdict carries.
    Severity {
        Low => "low" as "Low",
        Medium => "medium" as "Medium",
        High => "high" as "High",
    }
);

/// The analyst's state of a story: where it stands, the verdict with the severity that goes
/// with it, when it was closed and why, and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Triage {
    pub status: Status,
    pub verdict: Option<Verdict>,
    /// Only with the verdict `malicious`.
    pub severity: Option<Severity>,
    /// When the story was closed; `None` unless it is closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Why the analyst closed it, if they said; `None` unless it is closed.
    pub close_reason: Option<String>,
    /// The user name of the analyst who owns the story.
    pub assignee: Option<String>,
}

/// The most characters a close reason holds.
pub const MAX_CLOSE_REASON_CHARS: usize = 500;

/// An analyst's change of a story's triage: a field left `None` stays as it is; `Some(None)`
/// clears the verdict, the severity or the assignee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriageChange {
    pub status: Option<Status>,
    pub verdict: Option<Option<Verdict>>,
    pub severity: Option<Option<Severity>>,
    /// The user name of the new owner (the store checks that the user may own the story).
    pub assignee: Option<Option<String>>,
    /// Why the story is closed: only with a change that leaves it closed.
    pub close_reason: Option<String>,
}

impl TriageChange {
    /// Whether the change names anything to change.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.status.is_none()
            && self.verdict.is_none()
            && self.severity.is_none()
            && self.assignee.is_none()
            && self.close_reason.is_none()
    }
}

/// Why an analyst's change cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TriageError {
    /// A severity was set on a story whose verdict is not `malicious`.
    #[error("severity: only a story with the verdict malicious has a severity")]
    SeverityWithoutMalicious,
    /// A story was closed without a verdict, given or already there.
    #[error(
        "verdict: closing a story needs a verdict (malicious, suspicious, informational or benign)"
    )]
    CloseWithoutVerdict,
    /// A close reason came with a change that does not leave the story closed.
    #[error("close_reason: only a closed story has a close reason")]
    ReasonWithoutClose,
    /// A close reason over [`MAX_CLOSE_REASON_CHARS`].
    #[error("close_reason: at most 500 characters")]
    ReasonTooLong,
}

impl Default for Triage {
    /// A new story: open, no verdict, no severity, no owner.
    fn default() -> Self {
        Self {
            status: Status::Open,
            verdict: None,
            severity: None,
            closed_at: None,
            close_reason: None,
            assignee: None,
        }
    }
}

impl Triage {
    /// Applies an analyst's change made at `now`.
    ///
    /// The severity rule: only the verdict `malicious` carries a severity. A change that sets a
    /// severity on any other verdict is refused; a change of the verdict away from `malicious`
    /// clears the severity. A story closed by the change is closed at `now`; one that stays
    /// closed keeps its time; one that leaves `closed` has none.
    ///
    /// Closing needs a verdict, given with the change or already the story's; a close reason
    /// (trimmed; blank is none) comes only with a change that leaves the story closed, and
    /// goes when the story leaves `closed`. The assignee is the change's, or stays.
    ///
    /// # Errors
    /// [`TriageError`]: a severity without `malicious`, a close without a verdict, a close
    /// reason without a close or over its length.
    pub fn apply(self, change: &TriageChange, now: DateTime<Utc>) -> Result<Self, TriageError> {
        let verdict = change.verdict.unwrap_or(self.verdict);
        let mut severity = change.severity.unwrap_or(self.severity);
        if verdict != Some(Verdict::Malicious) {
            if change.severity.flatten().is_some() {
                return Err(TriageError::SeverityWithoutMalicious);
            }
            severity = None;
        }
        let status = change.status.unwrap_or(self.status);
        let closing = status == Status::Closed && self.status != Status::Closed;
        if closing && verdict.is_none() {
            return Err(TriageError::CloseWithoutVerdict);
        }
        let closed_at = match (status, self.status) {
            (Status::Closed, Status::Closed) => self.closed_at.or(Some(now)),
            (Status::Closed, _) => Some(now),
            _ => None,
        };
        let reason = change
            .close_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if reason.is_some() && status != Status::Closed {
            return Err(TriageError::ReasonWithoutClose);
        }
        if reason.is_some_and(|r| r.chars().count() > MAX_CLOSE_REASON_CHARS) {
            return Err(TriageError::ReasonTooLong);
        }
        let close_reason = match (status, reason) {
            (Status::Closed, Some(r)) => Some(r.to_owned()),
            (Status::Closed, None) if !closing => self.close_reason,
            _ => None,
        };
        Ok(Self {
            status,
            verdict,
            severity,
            closed_at,
            close_reason,
            assignee: change.assignee.clone().unwrap_or(self.assignee),
        })
    }

    /// Returns the triage of a story that replaces `retired` (a late, earlier incident moved
    /// the first incident of its window, so the story's id changed): the analyst's work moves
    /// over. A successor that has a status of its own (anything but `open`) keeps it, with its
    /// closed time; otherwise it takes the retired story's. Likewise the verdict, with the
    /// severity that goes with it, so a merged story never pairs one story's verdict with the
    /// other's severity.
    /// The owner is the successor's own, else the retired story's.
    #[must_use]
    pub fn inherit(self, retired: Triage) -> Self {
        let (status, closed_at, close_reason) = if self.status == Status::Open {
            (retired.status, retired.closed_at, retired.close_reason)
        } else {
            (self.status, self.closed_at, self.close_reason)
        };
        let (verdict, severity) = if self.verdict.is_none() {
            (retired.verdict, retired.severity)
        } else {
            (self.verdict, self.severity)
        };
        Self {
            status,
            verdict,
            severity,
            closed_at,
            close_reason,
            assignee: self.assignee.or(retired.assignee),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(*s));
        }
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(*v));
        }
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(*s));
        }
        assert_eq!(Status::parse("Closed"), None);
        assert_eq!(
            serde_json::to_string(&Status::PendingMoreInfo)
                .ok()
                .as_deref(),
            Some("\"pending_more_info\"")
        );
    }

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(h * 3600, 0).unwrap_or_default()
    }

    #[test]
    fn only_a_malicious_verdict_carries_a_severity() {
        let open = Triage::default();
        let malicious = open
            .clone()
            .apply(
                &TriageChange {
                    verdict: Some(Some(Verdict::Malicious)),
                    severity: Some(Some(Severity::High)),
                    ..TriageChange::default()
                },
                at(1),
            )
            .unwrap_or_default();
        assert_eq!(malicious.severity, Some(Severity::High));
        // Away from malicious, the severity goes with it.
        let benign = malicious.apply(
            &TriageChange {
                verdict: Some(Some(Verdict::Benign)),
                ..TriageChange::default()
            },
            at(2),
        );
        assert_eq!(benign.map(|t| t.severity), Ok(None));
        // A severity without the malicious verdict is refused, not dropped.
        for verdict in [None, Some(Some(Verdict::Suspicious))] {
            let change = TriageChange {
                verdict,
                severity: Some(Some(Severity::Low)),
                ..TriageChange::default()
            };
            assert_eq!(
                open.clone().apply(&change, at(1)),
                Err(TriageError::SeverityWithoutMalicious)
            );
        }
        // Clearing the severity is always allowed.
        let cleared = open.clone().apply(
            &TriageChange {
                severity: Some(None),
                ..TriageChange::default()
            },
            at(1),
        );
        assert_eq!(cleared, Ok(open));
    }

    #[test]
    fn closing_keeps_the_time_it_was_first_closed() {
        let close = TriageChange {
            status: Some(Status::Closed),
            verdict: Some(Some(Verdict::Benign)),
            ..TriageChange::default()
        };
        let closed = Triage::default().apply(&close, at(1)).unwrap_or_default();
        assert_eq!(closed.closed_at, Some(at(1)));
        let again = closed.clone().apply(&close, at(5)).unwrap_or_default();
        assert_eq!(
            again.closed_at,
            Some(at(1)),
            "closing a closed story keeps its time"
        );
        let reopened = again
            .apply(
                &TriageChange {
                    status: Some(Status::Monitoring),
                    ..TriageChange::default()
                },
                at(6),
            )
            .unwrap_or_default();
        assert_eq!(reopened.closed_at, None);
    }

    #[test]
    fn closing_needs_a_verdict_and_a_reason_goes_with_the_close() {
        let close = TriageChange {
            status: Some(Status::Closed),
            ..TriageChange::default()
        };
        assert_eq!(
            Triage::default().apply(&close, at(1)),
            Err(TriageError::CloseWithoutVerdict)
        );
        let judged = Triage {
            verdict: Some(Verdict::Benign),
            ..Triage::default()
        };
        let with_reason = TriageChange {
            close_reason: Some("  test machine  ".into()),
            ..close.clone()
        };
        let closed = judged
            .clone()
            .apply(&with_reason, at(1))
            .unwrap_or_default();
        assert_eq!(closed.close_reason.as_deref(), Some("test machine"));
        // Another change of a closed story keeps the reason; leaving closed drops it.
        let assigned = closed
            .clone()
            .apply(
                &TriageChange {
                    assignee: Some(Some("ana".into())),
                    ..TriageChange::default()
                },
                at(2),
            )
            .unwrap_or_default();
        assert_eq!(assigned.close_reason.as_deref(), Some("test machine"));
        assert_eq!(assigned.assignee.as_deref(), Some("ana"));
        let reopened = assigned
            .apply(
                &TriageChange {
                    status: Some(Status::Open),
                    ..TriageChange::default()
                },
                at(3),
            )
            .unwrap_or_default();
        assert_eq!(reopened.close_reason, None);
        assert_eq!(reopened.assignee.as_deref(), Some("ana"), "the owner stays");
        // A reason without a close, or too long, is refused.
        let reason_only = TriageChange {
            close_reason: Some("x".into()),
            ..TriageChange::default()
        };
        assert_eq!(
            judged.clone().apply(&reason_only, at(1)),
            Err(TriageError::ReasonWithoutClose)
        );
        let long = TriageChange {
            close_reason: Some("x".repeat(MAX_CLOSE_REASON_CHARS + 1)),
            ..close
        };
        assert_eq!(judged.apply(&long, at(1)), Err(TriageError::ReasonTooLong));
    }

    #[test]
    fn a_successor_keeps_its_own_work_and_takes_the_rest_whole() {
        let retired = Triage {
            status: Status::Closed,
            verdict: Some(Verdict::Malicious),
            severity: Some(Severity::High),
            closed_at: Some(at(3)),
            close_reason: Some("contained".into()),
            assignee: Some("ana".into()),
        };
        assert_eq!(Triage::default().inherit(retired.clone()), retired);
        let own = Triage {
            status: Status::Monitoring,
            verdict: Some(Verdict::Benign),
            severity: None,
            closed_at: None,
            close_reason: None,
            assignee: Some("bo".into()),
        };
        assert_eq!(own.clone().inherit(retired.clone()), own);
        // A verdict moves with its own severity; a status with its own closed time and reason.
        let verdict_only = Triage {
            verdict: Some(Verdict::Suspicious),
            ..Triage::default()
        };
        assert_eq!(
            verdict_only.inherit(retired),
            Triage {
                status: Status::Closed,
                verdict: Some(Verdict::Suspicious),
                severity: None,
                closed_at: Some(at(3)),
                close_reason: Some("contained".into()),
                assignee: Some("ana".into()),
            }
        );
    }
}
