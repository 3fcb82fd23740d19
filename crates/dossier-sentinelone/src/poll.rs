//! Where the next poll starts: pure checkpoint arithmetic, no IO.
//!
//! Polls on `threatInfo.updatedAt` ascending (SENTINELONE.md §6.2) with `updatedAt__gte` frozen
//! while a cursor walk is in progress (§6.5, as Elastic does). When a walk ends the window moves
//! to the highest `updatedAt` actually received minus an overlap (§6.3, §6.4): late-indexed and
//! same-microsecond threats are re-read, and the store dedupes by `(id, updatedAt)`. The
//! checkpoint never moves past what was received and never moves backwards.

use chrono::{DateTime, Duration, Utc};
use dossier_domain::Incident;
use serde::{Deserialize, Serialize};

use crate::query::{SortBy, SortOrder, ThreatQuery, MAX_PAGE_SIZE};

/// The persisted position of a connector's poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Lower bound (`updatedAt__gte`) of the current walk; frozen while `cursor` is set.
    pub since: DateTime<Utc>,
    /// Cursor of the next page of the current walk; `None` between walks.
    pub cursor: Option<String>,
    /// The highest `threatInfo.updatedAt` received so far.
    pub high_water: Option<DateTime<Utc>>,
    /// While the first walk (the backfill) is under way: when it started.
    #[serde(default)]
    pub backfill_started: Option<DateTime<Utc>>,
}

/// How far the first walk (the backfill) has come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackfillProgress {
    /// 0.0 to 1.0, by the `updatedAt` reached within the backfill window.
    pub fraction: f64,
    /// At the pace so far; `None` before anything arrived.
    pub eta: Option<Duration>,
}

/// How a connector polls. Serialised with durations in whole seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollPolicy {
    /// Threats per page, at most 1000.
    pub page_size: u32,
    /// How far before the high-water mark the next walk starts.
    #[serde(rename = "overlap_secs", with = "seconds")]
    pub overlap: Duration,
    /// How far back the first walk reaches (bounded, §6.16).
    #[serde(rename = "backfill_secs", with = "seconds")]
    pub backfill: Duration,
}

/// `chrono::Duration` as whole seconds (chrono has no serde for it).
mod seconds {
    use chrono::Duration;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = i64::deserialize(d)?;
        Duration::try_seconds(secs).ok_or_else(|| D::Error::custom("duration out of range"))
    }
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            page_size: MAX_PAGE_SIZE,
            overlap: Duration::seconds(30),
            backfill: Duration::days(90),
        }
    }
}

impl Checkpoint {
    /// Returns the checkpoint of a connector that has never polled: `backfill` before `now`.
    #[must_use]
    pub fn initial(now: DateTime<Utc>, policy: &PollPolicy) -> Self {
        Checkpoint {
            since: now
                .checked_sub_signed(policy.backfill)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            cursor: None,
            high_water: None,
            backfill_started: Some(now),
        }
    }

    /// Returns how far the backfill has come, or `None` once it is done.
    #[must_use]
    pub fn backfill_progress(&self, now: DateTime<Utc>) -> Option<BackfillProgress> {
        let started = self.backfill_started?;
        let window = (started - self.since).num_milliseconds().max(1) as f64;
        let reached = self.high_water.map_or(0.0, |h| {
            (h.min(started) - self.since).num_milliseconds().max(0) as f64
        });
        let fraction = (reached / window).clamp(0.0, 1.0);
        let elapsed = (now - started).num_milliseconds().max(0) as f64;
        let eta = (fraction > 0.0)
            .then(|| Duration::milliseconds((elapsed * (1.0 - fraction) / fraction) as i64));
        Some(BackfillProgress { fraction, eta })
    }

    /// Returns the query for the next page: `updatedAt__gte = since`, `updatedAt` ascending,
    /// the policy's page size and the current cursor, if any.
    #[must_use]
    pub fn query(&self, policy: &PollPolicy) -> ThreatQuery {
        ThreatQuery {
            limit: policy.page_size.clamp(1, MAX_PAGE_SIZE),
            cursor: self.cursor.clone(),
            updated_at_gte: Some(self.since),
            sort_by: Some(SortBy::UpdatedAt),
            sort_order: Some(SortOrder::Asc),
            ..ThreatQuery::default()
        }
    }

    /// Returns the checkpoint after a page was received and stored.
    ///
    /// `page_max_updated_at` is the highest `updatedAt` on the page (see
    /// [`page_max_updated_at`]); `next_cursor` is the page's `pagination.nextCursor`. While a
    /// cursor follows, `since` stays frozen; when the walk ends, `since` moves to
    /// `high_water - overlap` if that is later.
    #[must_use]
    pub fn after_page(
        &self,
        page_max_updated_at: Option<DateTime<Utc>>,
        next_cursor: Option<&str>,
        policy: &PollPolicy,
    ) -> Checkpoint {
        let high_water = self.high_water.max(page_max_updated_at);
        match next_cursor
            .map(str::trim)
            .filter(|c| !c.is_empty() && *c != "null")
        {
            Some(cursor) => Checkpoint {
                since: self.since,
                cursor: Some(cursor.to_owned()),
                high_water,
                backfill_started: self.backfill_started,
            },
            None => {
                let moved = high_water.and_then(|h| h.checked_sub_signed(policy.overlap.abs()));
                // The first walk's end is the backfill's end.
                Checkpoint {
                    since: self.since.max(moved.unwrap_or(self.since)),
                    cursor: None,
                    high_water,
                    backfill_started: None,
                }
            }
        }
    }

    /// Returns the checkpoint to use when the API rejected the cursor (expired, or bound to
    /// other filters): the walk starts again from the same `since`.
    #[must_use]
    pub fn restart_walk(&self) -> Checkpoint {
        Checkpoint {
            since: self.since,
            cursor: None,
            high_water: self.high_water,
            backfill_started: self.backfill_started,
        }
    }

    /// Tells whether a cursor walk is in progress.
    #[must_use]
    pub fn walk_in_progress(&self) -> bool {
        self.cursor.is_some()
    }
}

/// Returns the highest `updated_at` among `incidents`.
#[must_use]
pub fn page_max_updated_at(incidents: &[Incident]) -> Option<DateTime<Utc>> {
    incidents.iter().map(|i| i.updated_at).max()
}

/// Like [`page_max_updated_at`], but ignores timestamps after `not_after`.
///
/// Far-future timestamps exist in real data (`2185-…`, §6.9); one of them would otherwise lift
/// the checkpoint past every future threat. Callers pass `now` plus a tolerated clock skew.
#[must_use]
pub fn page_max_updated_at_until(
    incidents: &[Incident],
    not_after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    incidents
        .iter()
        .map(|i| i.updated_at)
        .filter(|t| *t <= not_after)
        .max()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use dossier_domain::time::parse_lenient;

    fn t(s: &str) -> DateTime<Utc> {
        parse_lenient(s).unwrap()
    }

    #[test]
    fn policy_round_trips_in_seconds() {
        let policy = PollPolicy::default();
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"page_size": 1000, "overlap_secs": 30, "backfill_secs": 7_776_000})
        );
        assert_eq!(serde_json::from_value::<PollPolicy>(json).unwrap(), policy);
    }

    #[test]
    fn initial_reaches_back_by_the_backfill() {
        let policy = PollPolicy::default();
        let cp = Checkpoint::initial(t("2025-04-01T00:00:00Z"), &policy);
        assert_eq!(cp.since, t("2025-01-01T00:00:00Z"));
        assert!(!cp.walk_in_progress());
        assert_eq!(cp.high_water, None);
    }

    #[test]
    fn a_walk_freezes_since_then_moves_it_to_high_water_minus_overlap() {
        let policy = PollPolicy::default();
        let cp = Checkpoint::initial(t("2025-04-01T00:00:00Z"), &policy);
        let q = cp.query(&policy);
        assert_eq!(q.updated_at_gte, Some(cp.since));
        assert_eq!(q.sort_by, Some(SortBy::UpdatedAt));
        assert_eq!(q.limit, 1000);

        let cp1 = cp.after_page(Some(t("2025-02-01T00:00:00Z")), Some("abcd"), &policy);
        assert_eq!(cp1.since, cp.since);
        assert!(cp1.walk_in_progress());
        assert_eq!(cp1.query(&policy).cursor.as_deref(), Some("abcd"));
        assert_eq!(cp1.query(&policy).updated_at_gte, Some(cp.since));

        let cp2 = cp1.after_page(Some(t("2025-03-01T00:00:00Z")), Some("efgh"), &policy);
        assert_eq!(cp2.since, cp.since);
        let done = cp2.after_page(None, None, &policy);
        assert!(!done.walk_in_progress());
        assert_eq!(done.since, t("2025-02-28T23:59:30Z"));
        assert_eq!(done.high_water, Some(t("2025-03-01T00:00:00Z")));
    }

    #[test]
    fn an_empty_walk_keeps_since() {
        let policy = PollPolicy::default();
        let cp = Checkpoint::initial(t("2025-04-01T00:00:00Z"), &policy);
        // An empty first walk ends the backfill and changes nothing else.
        let ended = Checkpoint {
            backfill_started: None,
            ..cp.clone()
        };
        assert_eq!(cp.after_page(None, None, &policy), ended);
        assert_eq!(cp.after_page(None, Some("null"), &policy), ended);
    }

    #[test]
    fn old_late_indexed_threats_do_not_move_since_backwards() {
        let policy = PollPolicy::default();
        let cp = Checkpoint {
            since: t("2025-03-01T00:00:00Z"),
            cursor: None,
            high_water: None,
            backfill_started: None,
        };
        let done = cp.after_page(Some(t("2024-01-01T00:00:00Z")), None, &policy);
        assert_eq!(done.since, cp.since);
    }

    #[test]
    fn restart_walk_drops_only_the_cursor() {
        let cp = Checkpoint {
            since: t("2025-03-01T00:00:00Z"),
            cursor: Some("stale".into()),
            high_water: Some(t("2025-03-02T00:00:00Z")),
            backfill_started: None,
        };
        let r = cp.restart_walk();
        assert_eq!(r.cursor, None);
        assert_eq!((r.since, r.high_water), (cp.since, cp.high_water));
    }

    #[test]
    fn backfill_progress_follows_the_first_walk_and_ends_with_it() {
        let policy = PollPolicy::default();
        let now = t("2025-06-01T00:00:00Z");
        let cp = Checkpoint::initial(now, &policy);
        let p = cp.backfill_progress(now).unwrap();
        assert!(p.fraction.abs() < f64::EPSILON && p.eta.is_none());
        // Half the 90-day window reached after 10 minutes: 10 more to go.
        let half = cp.since + Duration::days(45);
        let cp = cp.after_page(Some(half), Some("c1"), &policy);
        let p = cp.backfill_progress(now + Duration::minutes(10)).unwrap();
        assert!((p.fraction - 0.5).abs() < 1e-6, "{p:?}");
        assert_eq!(p.eta.map(|d| d.num_minutes()), Some(10));
        // A restarted walk is still the backfill; the walk's end is its end.
        let cp = cp.restart_walk();
        assert!(cp.backfill_progress(now).is_some());
        let cp = cp.after_page(Some(now), None, &policy);
        assert!(cp.backfill_progress(now).is_none());
        // Checkpoints saved before backfill tracking read as done.
        let old: Checkpoint = serde_json::from_str(
            r#"{"since":"2025-03-01T00:00:00Z","cursor":null,"high_water":null}"#,
        )
        .unwrap();
        assert!(old.backfill_progress(now).is_none());
    }
}
