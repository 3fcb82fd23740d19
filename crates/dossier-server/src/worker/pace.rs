//! Whether a connector keeps up with its tenant: a tenant whose pages take longer than
//! `slow_page_after`, or whose backlog has grown for `slow_backlog_after`, is not simply
//! `connected`. The connector stays `connected` (it reads), with a reason that says it is slow
//! and by how much ("slow: pages take 12 s; 3 min behind").
//!
//! The backlog is how far the walk under way is behind the clock: now minus the newest update
//! time read, while pages of it remain. Between walks the connector has read everything the
//! tenant had, so it is behind by nothing. The backlog *grows* when it stays above the smallest
//! it has been since it began growing: a backfill or a catch-up shrinks it page by page, a
//! tenant that makes records faster than they can be read makes it grow.

use std::time::{Duration, Instant};

/// The pace of one connector's reads, and what it makes of them.
#[derive(Debug)]
pub(super) struct Pace {
    page_after: Duration,
    backlog_after: Duration,
    /// How long the last page took, retries included.
    last_page: Option<Duration>,
    /// How far behind the clock the walk is, when a walk is under way.
    behind: Option<chrono::Duration>,
    /// The smallest backlog since it last shrank, and when it was that.
    least: Option<(chrono::Duration, Instant)>,
}

impl Pace {
    pub(super) fn new(page_after: Duration, backlog_after: Duration) -> Self {
        Self {
            page_after,
            backlog_after,
            last_page: None,
            behind: None,
            least: None,
        }
    }

    /// A page took `took` to come, retries included.
    pub(super) fn page(&mut self, took: Duration) {
        self.last_page = Some(took);
    }

    /// After a page was read at `now`: how far behind the clock the walk is (`None` when the
    /// walk has ended: nothing is waiting).
    pub(super) fn backlog(&mut self, behind: Option<chrono::Duration>, now: Instant) {
        self.behind = behind.map(|b| b.max(chrono::Duration::zero()));
        match (self.behind, self.least) {
            (None, _) => self.least = None,
            (Some(b), Some((least, _))) if b > least => {}
            (Some(b), _) => self.least = Some((b, now)),
        }
    }

    /// What the connector says while it is slow, at `now`; `None` when it keeps up.
    pub(super) fn reason(&self, now: Instant) -> Option<String> {
        let slow_pages = self.last_page.filter(|t| *t > self.page_after);
        let growing = match (self.behind, self.least) {
            (Some(b), Some((least, since))) => {
                b > least && now.saturating_duration_since(since) >= self.backlog_after
            }
            _ => false,
        };
        if slow_pages.is_none() && !growing {
            return None;
        }
        let mut parts = Vec::new();
        if let Some(t) = slow_pages {
            parts.push(format!("pages take {}", human(t)));
        }
        if let Some(b) = self.behind.filter(|b| *b > chrono::Duration::zero()) {
            let b = b.to_std().unwrap_or_default();
            if growing {
                parts.push(format!("{} behind and falling further behind", human(b)));
            } else {
                parts.push(format!("{} behind", human(b)));
            }
        }
        Some(format!("slow: {}", parts.join("; ")))
    }
}

/// A length of time as a person reads it at a glance: `12 s`, `3 min`, `5 h`, `2 days`.
fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 10.0 {
        format!("{secs:.1} s")
    } else if secs < 120.0 {
        format!("{} s", d.as_secs())
    } else if secs < 2.0 * 3600.0 {
        format!("{} min", d.as_secs() / 60)
    } else if secs < 48.0 * 3600.0 {
        format!("{} h", d.as_secs() / 3600)
    } else {
        format!("{} days", d.as_secs() / 86_400)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn mins(n: i64) -> chrono::Duration {
        chrono::Duration::minutes(n)
    }

    #[test]
    fn slow_pages_are_slow_until_a_page_is_fast_again() {
        let t0 = Instant::now();
        let mut p = Pace::new(secs(10), secs(300));
        p.page(secs(3));
        p.backlog(None, t0);
        assert_eq!(p.reason(t0), None);
        p.page(secs(12));
        assert_eq!(p.reason(t0).as_deref(), Some("slow: pages take 12 s"));
        p.backlog(Some(mins(3)), t0);
        assert_eq!(
            p.reason(t0).as_deref(),
            Some("slow: pages take 12 s; 3 min behind")
        );
        p.page(Duration::from_millis(2500));
        assert_eq!(p.reason(t0), None, "a fast page again");
    }

    #[test]
    fn a_backlog_is_slow_once_it_has_grown_for_the_set_time() {
        let t0 = Instant::now();
        let mut p = Pace::new(secs(10), secs(300));
        p.page(secs(1));
        p.backlog(Some(mins(10)), t0);
        p.backlog(Some(mins(12)), t0 + secs(200));
        assert_eq!(p.reason(t0 + secs(200)), None, "not for long enough yet");
        p.backlog(Some(mins(14)), t0 + secs(301));
        assert_eq!(
            p.reason(t0 + secs(301)).as_deref(),
            Some("slow: 14 min behind and falling further behind")
        );
        // Shrinking back to where it started: it keeps up again.
        p.backlog(Some(mins(9)), t0 + secs(400));
        assert_eq!(p.reason(t0 + secs(400)), None);
        // The end of the walk: nothing waits.
        p.backlog(Some(mins(20)), t0 + secs(500));
        p.backlog(None, t0 + secs(900));
        assert_eq!(p.reason(t0 + secs(900)), None);
    }

    #[test]
    fn a_backfill_that_shrinks_its_backlog_is_not_slow() {
        let t0 = Instant::now();
        let mut p = Pace::new(secs(10), secs(60));
        for (n, behind_days) in (0..50).zip((1..=90).rev()) {
            p.page(secs(2));
            let now = t0 + secs(n * 30);
            p.backlog(Some(chrono::Duration::days(behind_days)), now);
            assert_eq!(p.reason(now), None);
        }
    }

    #[test]
    fn lengths_of_time_read_at_a_glance() {
        assert_eq!(human(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(human(secs(12)), "12 s");
        assert_eq!(human(secs(200)), "3 min");
        assert_eq!(human(secs(5 * 3600)), "5 h");
        assert_eq!(human(secs(3 * 86_400)), "3 days");
    }
}
