//! Where the next poll starts: pure checkpoint arithmetic, no IO, for any producer whose records
//! can be read in order of their update time, a page at a time with a cursor (SentinelOne's
//! `updatedAt` with `nextCursor`; Defender's `lastUpdateDateTime`, CrowdStrike's
//! `updated_timestamp` likewise). Each source turns a [`Window`] into its own request.
//!
//! Polls on the update time ascending (SENTINELONE.md §6.2) with the lower bound frozen
//! while a cursor walk is in progress (§6.5, as Elastic does). When a walk ends the window moves
//! to the highest `updatedAt` actually received minus an overlap (§6.3, §6.4): late-indexed and
//! same-microsecond threats are re-read, and the store dedupes by `(id, updatedAt)`. The
//! checkpoint never moves past what was received and never moves backwards.
//!
//! The overlap is also a length of time on the poller's clock: once the highest `updatedAt`
//! has been re-read for an overlap's length after it first arrived, it has *settled*, and the
//! next walks start just after it (`updatedAt__gt`). A threat indexed later than that would be
//! missed by the overlap alone too, once newer threats moved the window; without settling, a
//! quiet tenant would have the last overlap's threats (a bulk change can make that thousands)
//! read again on every poll until something newer arrived.
//!
//! The overlap is short (30 s) because every poll pays for it. Threats indexed minutes late are
//! found by a *sweep*: while the tenant is active, once every `sweep_every` (a minute) a walk
//! starts `sweep_overlap` (five minutes) before the high-water mark instead, frozen like any
//! walk, and the walks after it go on from `since` as before. `since` itself never moves back.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// The largest page a walk asks for; each source may ask for fewer.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// What the next request of a walk asks a producer for: records updated from a bound on (the
/// bound inclusive, or exclusive once it has settled), oldest update first, at most `limit`,
/// after `cursor` when a walk is under way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Records updated at or after this (`updatedAt__gte`).
    pub updated_gte: Option<DateTime<Utc>>,
    /// Records updated strictly after this (`updatedAt__gt`).
    pub updated_gt: Option<DateTime<Utc>>,
    /// The walk's next page.
    pub cursor: Option<String>,
    /// Records per page.
    pub limit: u32,
}

/// The persisted position of a connector's poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Lower bound of the current walk (`updatedAt__gte`, or `updatedAt__gt` when
    /// `since_exclusive`); frozen while `cursor` is set.
    pub since: DateTime<Utc>,
    /// `since` itself was read and has settled: walks start just after it.
    #[serde(default)]
    pub since_exclusive: bool,
    /// Cursor of the next page of the current walk; `None` between walks.
    pub cursor: Option<String>,
    /// The highest `threatInfo.updatedAt` received so far.
    pub high_water: Option<DateTime<Utc>>,
    /// While the first walk (the backfill) is under way: when it started.
    #[serde(default)]
    pub backfill_started: Option<DateTime<Utc>>,
    /// When (on the poller's clock) `high_water` was first received.
    #[serde(default)]
    pub high_water_seen: Option<DateTime<Utc>>,
    /// While a sweep walk is under way (or is the next walk): its lower bound
    /// (`updatedAt__gte`), frozen while `cursor` is set. `since` stays where it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep_from: Option<DateTime<Utc>>,
    /// When (on the poller's clock) the last sweep was begun, or the backfill ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sweep: Option<DateTime<Utc>>,
    /// Versions of records that could not be read, reported once each
    /// ([`crate::unreadable`]); committed with the page that read them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<crate::unreadable::UnreadableKey>,
    /// Records per page while smaller pages are asked for, after a response over the size
    /// cap ([`Checkpoint::smaller_pages`]); `None` is the policy's page size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_limit: Option<u32>,
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
    /// How far before the high-water mark a sweep walk starts: threats indexed up to about
    /// this late are still found (§6.4).
    #[serde(
        rename = "sweep_overlap_secs",
        with = "seconds",
        default = "default_sweep_overlap"
    )]
    pub sweep_overlap: Duration,
    /// How often a sweep walk is made while the tenant is active.
    #[serde(
        rename = "sweep_every_secs",
        with = "seconds",
        default = "default_sweep_every"
    )]
    pub sweep_every: Duration,
}

fn default_sweep_overlap() -> Duration {
    Duration::minutes(5)
}

fn default_sweep_every() -> Duration {
    Duration::minutes(1)
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
            sweep_overlap: default_sweep_overlap(),
            sweep_every: default_sweep_every(),
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
            since_exclusive: false,
            cursor: None,
            high_water: None,
            backfill_started: Some(now),
            high_water_seen: None,
            sweep_from: None,
            last_sweep: None,
            unreadable: Vec::new(),
            page_limit: None,
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
        #[expect(
            clippy::cast_possible_truncation,
            reason = "an estimate in milliseconds: saturating at i64's bounds is fine"
        )]
        let eta = (fraction > 0.0)
            .then(|| Duration::milliseconds((elapsed * (1.0 - fraction) / fraction) as i64));
        Some(BackfillProgress { fraction, eta })
    }

    /// Returns the query for the next page: `updatedAt__gte = since` (`updatedAt__gt` once it
    /// has settled, `updatedAt__gte = sweep_from` in a sweep), update time ascending, the
    /// policy's page size and the current cursor, if any.
    #[must_use]
    pub fn window(&self, policy: &PollPolicy) -> Window {
        let (gte, gt) = match (self.sweep_from, self.since_exclusive) {
            (Some(from), _) => (Some(from), None),
            (None, true) => (None, Some(self.since)),
            (None, false) => (Some(self.since), None),
        };
        let limit = self
            .page_limit
            .map_or(policy.page_size, |l| l.min(policy.page_size));
        Window {
            limit: limit.clamp(1, MAX_PAGE_SIZE),
            cursor: self.cursor.clone(),
            updated_gte: gte,
            updated_gt: gt,
        }
    }

    /// Returns the checkpoint after a page was received and stored at `now`.
    ///
    /// `page_max_updated_at` is the highest credible `updatedAt` on the page (see
    /// [`credible_updated_at`]); `next_cursor` is the page's `pagination.nextCursor`. While a
    /// cursor follows, `since` stays frozen; when the walk ends, `since` moves to
    /// `high_water - overlap` if that is later, or just after `high_water` once it has settled
    /// (arrived at least an overlap before `now`).
    #[must_use]
    pub fn after_page(
        &self,
        page_max_updated_at: Option<DateTime<Utc>>,
        next_cursor: Option<&str>,
        policy: &PollPolicy,
        now: DateTime<Utc>,
    ) -> Checkpoint {
        let high_water = self.high_water.max(page_max_updated_at);
        let high_water_seen = if high_water > self.high_water || self.high_water_seen.is_none() {
            high_water.map(|_| now)
        } else {
            self.high_water_seen
        };
        if let Some(cursor) = next_cursor
            .map(str::trim)
            .filter(|c| !c.is_empty() && *c != "null")
        {
            Checkpoint {
                cursor: Some(cursor.to_owned()),
                high_water,
                high_water_seen,
                ..self.clone()
            }
        } else {
            let overlap = policy.overlap.abs();
            // The later of: where this walk started, the overlap before the high-water
            // mark, and just after the mark once it has settled. At the same instant, an
            // exclusive bound is the later one.
            let mut bound = (self.since, self.since_exclusive);
            if let Some(h) = high_water {
                if let Some(moved) = h.checked_sub_signed(overlap) {
                    bound = bound.max((moved, false));
                }
                let settled = high_water_seen.is_some_and(|seen| now - seen >= overlap);
                if settled {
                    bound = bound.max((h, true));
                }
            }
            // The first walk's end is the backfill's end, and starts the sweeps' clock.
            let mut next = Checkpoint {
                since: bound.0,
                since_exclusive: bound.1,
                cursor: None,
                high_water,
                backfill_started: None,
                high_water_seen,
                sweep_from: None,
                last_sweep: self.last_sweep,
                unreadable: self.unreadable.clone(),
                page_limit: self.page_limit,
            };
            if self.backfill_started.is_some() {
                next.last_sweep = Some(now);
            } else if let Some(from) = next.sweep_due(policy, now) {
                next.sweep_from = Some(from);
                next.last_sweep = Some(now);
            }
            next
        }
    }

    /// Where the next walk should start to sweep, if one is due: a sweep every `sweep_every`
    /// while threats indexed late may still come (until `sweep_overlap` and one `sweep_every`
    /// after the high-water mark arrived), and only when it reaches further back than the next
    /// walk would anyway.
    fn sweep_due(&self, policy: &PollPolicy, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (h, seen) = self.high_water.zip(self.high_water_seen)?;
        let every = policy.sweep_every.abs();
        let reach = policy.sweep_overlap.abs();
        let due = self.last_sweep.is_none_or(|t| now - t >= every);
        let active = now - seen <= reach + every;
        let from = h.checked_sub_signed(reach)?;
        (due && active && (from, false) < (self.since, self.since_exclusive)).then_some(from)
    }

    /// Returns the checkpoint to use when the API rejected the cursor (expired, or bound to
    /// other filters): the walk starts again from the same `since`.
    #[must_use]
    pub fn restart_walk(&self) -> Checkpoint {
        Checkpoint {
            cursor: None,
            ..self.clone()
        }
    }

    /// Returns the checkpoint to ask again with after a response over the size cap: the same
    /// place, half as many records per page, down to one; `None` when a page is one record
    /// already (that record alone is over the cap).
    #[must_use]
    pub fn smaller_pages(&self, policy: &PollPolicy) -> Option<Checkpoint> {
        let limit = self.window(policy).limit;
        (limit > 1).then(|| Checkpoint {
            page_limit: Some(limit / 2),
            ..self.clone()
        })
    }

    /// After a page read whole at a reduced size, the next asks for twice as many, back up to
    /// the policy's page size: one large record must not slow the connector for good.
    pub fn larger_pages(&mut self, policy: &PollPolicy) {
        if let Some(l) = self.page_limit {
            let doubled = l.saturating_mul(2);
            self.page_limit = (doubled < policy.page_size).then_some(doubled);
        }
    }

    /// Tells whether a cursor walk is in progress.
    #[must_use]
    pub fn walk_in_progress(&self) -> bool {
        self.cursor.is_some()
    }
}

/// How far past the poller's clock a threat's `updatedAt` may be and still count towards the
/// high-water mark: a tolerated clock skew between the tenant and Dossier.
const MAX_CLOCK_SKEW_MINUTES: i64 = 5;

/// Returns `updated_at` if it may count towards the high-water mark at `now` ([`after_page`]'s
/// `page_max_updated_at` is the highest of these on a page), `None` if it is in the future past
/// a tolerated clock skew. Far-future timestamps exist in real data (`2185-…`, §6.9); one of
/// them would otherwise lift the checkpoint past every threat to come.
///
/// [`after_page`]: Checkpoint::after_page
#[must_use]
pub fn credible_updated_at(updated_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (updated_at <= now + Duration::minutes(MAX_CLOCK_SKEW_MINUTES)).then_some(updated_at)
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
    fn a_far_future_updated_at_does_not_count_towards_the_high_water_mark() {
        let now = t("2025-03-01T12:00:00Z");
        for (at, counts) in [
            ("2025-03-01T11:00:00Z", true),
            ("2025-03-01T12:05:00Z", true),
            ("2025-03-01T12:05:01Z", false),
            ("2185-01-01T00:00:00Z", false),
        ] {
            assert_eq!(
                credible_updated_at(t(at), now),
                counts.then(|| t(at)),
                "{at}"
            );
        }
    }

    #[test]
    fn policy_round_trips_in_seconds() {
        let policy = PollPolicy::default();
        let json = serde_json::to_value(&policy).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"page_size": 1000, "overlap_secs": 30, "backfill_secs": 7_776_000,
                               "sweep_overlap_secs": 300, "sweep_every_secs": 60})
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
        let q = cp.window(&policy);
        assert_eq!(q.updated_gte, Some(cp.since));
        assert_eq!(q.limit, 1000);

        let now = t("2025-04-01T00:00:00Z");
        let cp1 = cp.after_page(Some(t("2025-02-01T00:00:00Z")), Some("abcd"), &policy, now);
        assert_eq!(cp1.since, cp.since);
        assert!(cp1.walk_in_progress());
        assert_eq!(cp1.window(&policy).cursor.as_deref(), Some("abcd"));
        assert_eq!(cp1.window(&policy).updated_gte, Some(cp.since));

        let cp2 = cp1.after_page(Some(t("2025-03-01T00:00:00Z")), Some("efgh"), &policy, now);
        assert_eq!(cp2.since, cp.since);
        let done = cp2.after_page(None, None, &policy, now);
        assert!(!done.walk_in_progress());
        assert_eq!(done.since, t("2025-02-28T23:59:30Z"));
        assert_eq!(done.high_water, Some(t("2025-03-01T00:00:00Z")));
    }

    #[test]
    fn an_empty_walk_keeps_since() {
        let policy = PollPolicy::default();
        let cp = Checkpoint::initial(t("2025-04-01T00:00:00Z"), &policy);
        // An empty first walk ends the backfill (which starts the sweeps' clock) and changes
        // nothing else.
        let now = t("2025-04-01T00:00:01Z");
        let ended = Checkpoint {
            backfill_started: None,
            last_sweep: Some(now),
            unreadable: Vec::new(),
            page_limit: None,
            ..cp.clone()
        };
        assert_eq!(cp.after_page(None, None, &policy, now), ended);
        assert_eq!(cp.after_page(None, Some("null"), &policy, now), ended);
    }

    #[test]
    fn old_late_indexed_threats_do_not_move_since_backwards() {
        let policy = PollPolicy::default();
        let cp = Checkpoint {
            since: t("2025-03-01T00:00:00Z"),
            since_exclusive: false,
            cursor: None,
            high_water: None,
            backfill_started: None,
            high_water_seen: None,
            sweep_from: None,
            last_sweep: None,
            unreadable: Vec::new(),
            page_limit: None,
        };
        let now = t("2025-03-02T00:00:00Z");
        let done = cp.after_page(Some(t("2024-01-01T00:00:00Z")), None, &policy, now);
        assert_eq!(done.since, cp.since);
        // Even once that old mark has settled.
        let done = done.after_page(None, None, &policy, now + Duration::hours(1));
        assert_eq!(done.since, cp.since);
    }

    #[test]
    fn restart_walk_drops_only_the_cursor() {
        let cp = Checkpoint {
            since: t("2025-03-01T00:00:00Z"),
            since_exclusive: true,
            cursor: Some("stale".into()),
            high_water: Some(t("2025-03-02T00:00:00Z")),
            backfill_started: None,
            high_water_seen: Some(t("2025-03-02T00:00:01Z")),
            sweep_from: None,
            last_sweep: None,
            unreadable: Vec::new(),
            page_limit: None,
        };
        let r = cp.restart_walk();
        assert_eq!(r.cursor, None);
        assert_eq!((r.since, r.high_water), (cp.since, cp.high_water));
        assert_eq!(r.window(&PollPolicy::default()).updated_gt, Some(cp.since));
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
        let cp = cp.after_page(Some(half), Some("c1"), &policy, now);
        let p = cp.backfill_progress(now + Duration::minutes(10)).unwrap();
        assert!((p.fraction - 0.5).abs() < 1e-6, "{p:?}");
        assert_eq!(p.eta.map(|d| d.num_minutes()), Some(10));
        // A restarted walk is still the backfill; the walk's end is its end.
        let cp = cp.restart_walk();
        assert!(cp.backfill_progress(now).is_some());
        let cp = cp.after_page(Some(now), None, &policy, now);
        assert!(cp.backfill_progress(now).is_none());
        // Checkpoints saved before backfill tracking read as done.
        let old: Checkpoint = serde_json::from_str(
            r#"{"since":"2025-03-01T00:00:00Z","cursor":null,"high_water":null}"#,
        )
        .unwrap();
        assert!(old.backfill_progress(now).is_none());
    }

    #[test]
    fn a_settled_high_water_mark_is_not_read_again() {
        // A bulk change gave many threats one updatedAt, and the tenant went quiet.
        let policy = PollPolicy::default();
        let bulk = t("2025-03-01T12:00:00.123456Z");
        let seen = t("2025-03-01T12:00:01Z");
        // (A sweep was just made: none is due while this test runs.)
        let cp = Checkpoint {
            since: t("2025-03-01T11:00:00Z"),
            since_exclusive: false,
            cursor: None,
            high_water: None,
            backfill_started: None,
            high_water_seen: None,
            sweep_from: None,
            last_sweep: Some(seen),
            unreadable: Vec::new(),
            page_limit: None,
        };
        let cp = cp.after_page(Some(bulk), None, &policy, seen);
        assert_eq!(cp.high_water_seen, Some(seen));
        let q = cp.window(&policy);
        assert_eq!(
            (q.updated_gte, q.updated_gt),
            (Some(bulk - policy.overlap), None)
        );
        // Re-read for the length of the overlap: late threats are still found meanwhile.
        let mut now = seen;
        let mut cp = cp;
        while now - seen < policy.overlap {
            cp = cp.after_page(Some(bulk), None, &policy, now);
            assert_eq!(cp.window(&policy).updated_gte, Some(bulk - policy.overlap));
            assert_eq!(
                cp.high_water_seen,
                Some(seen),
                "re-reading the mark does not renew it"
            );
            now += Duration::milliseconds(500);
        }
        // Then the mark has settled: the next walks start just after it, and find nothing.
        let cp = cp.after_page(Some(bulk), None, &policy, now);
        let q = cp.window(&policy);
        assert_eq!((q.updated_gte, q.updated_gt), (None, Some(bulk)));
        let quiet = cp.after_page(None, None, &policy, now + Duration::hours(1));
        assert_eq!(quiet, cp, "an empty walk changes nothing");
        // A newer threat opens the overlap again, never behind the settled mark.
        let newer = bulk + Duration::seconds(10);
        let later = now + Duration::seconds(20);
        let cp = quiet.after_page(Some(newer), None, &policy, later);
        assert_eq!((cp.since, cp.since_exclusive), (bulk, true));
        assert_eq!(cp.high_water_seen, Some(later));
        let much_newer = bulk + Duration::minutes(5);
        let cp = cp.after_page(
            Some(much_newer),
            None,
            &policy,
            later + Duration::seconds(1),
        );
        let q = cp.window(&policy);
        assert_eq!(
            (q.updated_gte, q.updated_gt),
            (Some(much_newer - policy.overlap), None)
        );
    }

    #[test]
    fn a_walk_keeps_its_bound_exclusive_while_a_cursor_follows() {
        let policy = PollPolicy::default();
        let h = t("2025-03-01T12:00:00Z");
        let cp = Checkpoint {
            since: h,
            since_exclusive: true,
            cursor: None,
            high_water: Some(h),
            backfill_started: None,
            high_water_seen: Some(h),
            sweep_from: None,
            last_sweep: None,
            unreadable: Vec::new(),
            page_limit: None,
        };
        let now = h + Duration::hours(1);
        let next = cp.after_page(Some(h + Duration::seconds(1)), Some("c1"), &policy, now);
        assert_eq!(next.window(&policy).updated_gt, Some(h));
        assert_eq!(next.window(&policy).updated_gte, None);
        assert_eq!(next.high_water_seen, Some(now));
    }

    #[test]
    fn an_active_tenant_is_swept_once_a_minute_from_five_minutes_back() {
        let policy = PollPolicy::default();
        let start = t("2025-03-01T12:00:00Z");
        let s = Duration::seconds;
        let bounds = |cp: &Checkpoint| {
            let q = cp.window(&policy);
            (q.updated_gte, q.updated_gt)
        };
        // The backfill ends: the sweeps' clock starts.
        let cp = Checkpoint::initial(start - s(60), &policy);
        let cp = cp.after_page(Some(start - s(5)), None, &policy, start);
        assert_eq!((cp.sweep_from, cp.last_sweep), (None, Some(start)));
        // Threats keep coming; within the minute, walks start an overlap before the mark.
        let cp = cp.after_page(Some(start + s(58)), None, &policy, start + s(59));
        assert_eq!(bounds(&cp), (Some(start + s(28)), None));
        // A minute on, the next walk reaches five minutes back; `since` stays.
        let h = start + s(59);
        let cp = cp.after_page(Some(h), None, &policy, start + s(60));
        assert_eq!(cp.sweep_from, Some(h - s(300)));
        assert_eq!(bounds(&cp), (Some(h - s(300)), None));
        assert_eq!(cp.since, h - s(30));
        // The sweep's bound is frozen while its cursor follows, and dropped when it ends.
        let cp = cp.after_page(Some(h - s(200)), Some("c1"), &policy, start + s(61));
        assert_eq!(bounds(&cp), (Some(h - s(300)), None));
        let cp = cp.after_page(Some(h + s(1)), None, &policy, start + s(62));
        assert_eq!(bounds(&cp), (Some(h - s(29)), None));
        assert_eq!(cp.last_sweep, Some(start + s(60)));
        // The tenant goes quiet: the sweeps go on a minute apart.
        let cp = cp.after_page(None, None, &policy, start + s(121));
        assert_eq!(cp.sweep_from, Some(h + s(1) - s(300)));
        // Quiet polls every half minute: a sweep a minute until six minutes after the last
        // threat arrived (at 62 s), then none.
        let mut cp = cp;
        let mut swept = Vec::new();
        for at in (122..1800).step_by(30) {
            cp = cp.after_page(None, None, &policy, start + s(at));
            if cp.sweep_from.is_some() {
                swept.push(at);
            }
        }
        assert_eq!(swept, [182, 242, 302, 362, 422]);
    }

    #[test]
    fn checkpoints_saved_before_settling_existed_still_read() {
        let old: Checkpoint = serde_json::from_str(
            r#"{"since":"2025-03-01T00:00:00Z","cursor":null,"high_water":"2025-03-01T00:00:30Z"}"#,
        )
        .unwrap();
        assert!(!old.since_exclusive);
        assert_eq!(old.high_water_seen, None);
        // The mark starts settling from the first walk that sees it.
        let now = t("2025-03-02T00:00:00Z");
        let policy = PollPolicy::default();
        let cp = old.after_page(None, None, &policy, now);
        assert_eq!(cp.high_water_seen, Some(now));
        assert!(!cp.since_exclusive);
        let cp = cp.after_page(None, None, &policy, now + policy.overlap);
        assert!(cp.since_exclusive);
    }
}

#[cfg(test)]
mod page_size_tests {
    use super::*;

    #[test]
    fn pages_halve_down_to_one_record_and_climb_back() {
        let policy = PollPolicy {
            page_size: 100,
            ..PollPolicy::default()
        };
        let mut cp = Checkpoint::initial(Utc::now(), &policy);
        cp.cursor = Some("c1".into());
        let mut limits = vec![cp.window(&policy).limit];
        while let Some(smaller) = cp.smaller_pages(&policy) {
            assert_eq!(smaller.cursor, cp.cursor, "the same place is asked again");
            cp = smaller;
            limits.push(cp.window(&policy).limit);
        }
        assert_eq!(limits, [100, 50, 25, 12, 6, 3, 1]);
        // The reduced size is kept through pages and their checkpoint JSON.
        let next = cp.after_page(None, Some("c2"), &policy, Utc::now());
        let json = serde_json::to_string(&next).unwrap_or_default();
        let mut back: Checkpoint = serde_json::from_str(&json).unwrap_or(cp);
        assert_eq!(back.window(&policy).limit, 1);
        let mut climbed = Vec::new();
        while back.page_limit.is_some() {
            back.larger_pages(&policy);
            climbed.push(back.window(&policy).limit);
        }
        assert_eq!(climbed, [2, 4, 8, 16, 32, 64, 100]);
        assert!(!serde_json::to_string(&back)
            .unwrap_or_default()
            .contains("page_limit"));
    }
}
