//! Checkpoint invariants over arbitrary walks: `since` is frozen while cursors are followed,
//! never exceeds the highest `updatedAt` received, never goes backwards, and the overlap is
//! applied only when a walk ends, until the high-water mark has settled. A sweep walk starts
//! `sweep_overlap` before the mark, no more often than `sweep_every`, only while the tenant is
//! active, and leaves `since` alone.

use chrono::{DateTime, Duration, TimeZone, Utc};
use dossier_sentinelone::{threat_query, SortBy, SortOrder};
use dossier_source::{Checkpoint, PollPolicy};
use proptest::prelude::*;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A walk: pages of `updatedAt` offsets (seconds from `base`, may be before `since`).
fn arb_walks() -> impl Strategy<Value = Vec<Vec<Vec<i64>>>> {
    let page = prop::collection::vec(-100_000i64..1_000_000, 0..5);
    let walk = prop::collection::vec(page, 1..6);
    prop::collection::vec(walk, 1..5)
}

proptest! {
    #[test]
    fn checkpoint_invariants_hold_over_any_walks(
        walks in arb_walks(),
        overlap_s in 0i64..600,
        backfill_days in 0i64..120,
        sweep_overlap_s in 0i64..3600,
        sweep_every_s in 0i64..600,
        steps in prop::collection::vec(0i64..400, 64),
    ) {
        let policy = PollPolicy {
            overlap: Duration::seconds(overlap_s),
            backfill: Duration::days(backfill_days),
            sweep_overlap: Duration::seconds(sweep_overlap_s),
            sweep_every: Duration::seconds(sweep_every_s),
            ..PollPolicy::default()
        };
        let mut cp = Checkpoint::initial(base() + Duration::days(30), &policy);
        let initial_since = cp.since;
        let mut max_received: Option<DateTime<Utc>> = None;
        // The poller's clock, and when it first received the current high-water mark.
        let mut now = base() + Duration::days(30);
        let mut first_seen: Option<DateTime<Utc>> = None;
        // When the last sweep was begun (or the backfill ended).
        let mut last_sweep: Option<DateTime<Utc>> = None;
        let mut step = steps.iter().cycle();
        for (w, walk) in walks.iter().enumerate() {
            let walk_bound = (cp.since, cp.since_exclusive);
            let sweep = cp.sweep_from;
            let backfill = cp.backfill_started.is_some();
            for (p, page) in walk.iter().enumerate() {
                now += Duration::seconds(*step.next().unwrap_or(&0));
                let q = threat_query(&cp.window(&policy));
                let sent = match sweep {
                    Some(from) => (Some(from), None),
                    None if walk_bound.1 => (None, Some(walk_bound.0)),
                    None => (Some(walk_bound.0), None),
                };
                prop_assert_eq!((q.updated_at_gte, q.updated_at_gt), sent, "frozen during a walk");
                prop_assert_eq!(q.sort_by, Some(SortBy::UpdatedAt));
                prop_assert_eq!(q.sort_order, Some(SortOrder::Asc));
                let page_max = page.iter().map(|s| base() + Duration::seconds(*s)).max();
                if page_max > max_received {
                    first_seen = Some(now);
                }
                max_received = max_received.max(page_max);
                let last = p + 1 == walk.len();
                let cursor = (!last).then(|| format!("c{w}-{p}"));
                let next = cp.after_page(page_max, cursor.as_deref(), &policy, now);

                prop_assert!(
                    (next.since, next.since_exclusive) >= (cp.since, cp.since_exclusive),
                    "never backwards"
                );
                prop_assert!(
                    next.since <= initial_since.max(max_received.unwrap_or(initial_since)),
                    "never past the highest updatedAt received"
                );
                prop_assert_eq!(next.high_water, max_received);
                if last {
                    prop_assert!(!next.walk_in_progress());
                    let expected = match (max_received, first_seen) {
                        (Some(h), Some(seen)) if now - seen >= policy.overlap => {
                            walk_bound.max((h - policy.overlap, false)).max((h, true))
                        }
                        (Some(h), _) => walk_bound.max((h - policy.overlap, false)),
                        (None, _) => walk_bound,
                    };
                    prop_assert_eq!(
                        (next.since, next.since_exclusive),
                        expected,
                        "overlap applied at walk end, until the mark settled"
                    );
                    prop_assert_eq!(next.high_water_seen, first_seen);
                    // The next walk sweeps when one is due, and only then.
                    let due = !backfill
                        && last_sweep.is_none_or(|t| now - t >= policy.sweep_every)
                        && first_seen.is_some_and(|seen| now - seen <= policy.sweep_overlap + policy.sweep_every);
                    let from = max_received.map(|h| h - policy.sweep_overlap);
                    let expected_sweep = from.filter(|f| due && (*f, false) < (next.since, next.since_exclusive));
                    prop_assert_eq!(next.sweep_from, expected_sweep, "a sweep when due");
                    if backfill || expected_sweep.is_some() {
                        last_sweep = Some(now);
                    }
                    prop_assert_eq!(next.last_sweep, last_sweep);
                } else {
                    prop_assert_eq!(
                        (next.since, next.since_exclusive),
                        walk_bound,
                        "since frozen while a cursor follows"
                    );
                    prop_assert_eq!(next.cursor.as_deref(), cursor.as_deref());
                    prop_assert_eq!(next.sweep_from, sweep, "a sweep's bound is frozen too");
                }
                cp = next;
            }
        }
        // A checkpoint survives a round trip through its persisted form.
        let json = serde_json::to_string(&cp).unwrap_or_default();
        let back: Checkpoint = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, cp);
    }

    #[test]
    fn restarting_a_walk_keeps_its_window(offsets in prop::collection::vec(0i64..100_000, 1..5)) {
        let policy = PollPolicy::default();
        let mut cp = Checkpoint::initial(base(), &policy);
        let since = cp.since;
        for (i, s) in offsets.iter().enumerate() {
            cp = cp.after_page(Some(base() + Duration::seconds(*s)), Some(&format!("c{i}")), &policy, base());
        }
        let restarted = cp.restart_walk();
        prop_assert!(!restarted.walk_in_progress());
        prop_assert_eq!(restarted.since, since);
        prop_assert_eq!(threat_query(&restarted.window(&policy)).cursor, None);
        prop_assert_eq!(threat_query(&restarted.window(&policy)).updated_at_gte, Some(since));
    }
}
