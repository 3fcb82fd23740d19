//! The client-side throttle (SENTINELONE.md §1.5, §6.8): `/threats` allows about 10 req/s per
//! token, so the client spaces its own requests instead of collecting 429s.
//!
//! A token bucket in its GCRA form: each caller reserves the next free slot under a short lock
//! and then sleeps until it, so waiters are served in order and nobody busy-loops. Time is
//! `tokio::time`, so tests drive it with a paused clock.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket shared by every clone of a [`crate::Client`].
#[derive(Debug)]
pub(crate) struct RateLimiter {
    /// Time between two requests at the sustained rate.
    interval: Duration,
    /// How far ahead of the sustained rate a burst may run: `(burst - 1) * interval`.
    tolerance: Duration,
    /// Theoretical arrival time of the next request.
    tat: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `per_sec` must be finite and positive; `burst` of 0 is taken as 1.
    pub(crate) fn new(per_sec: f64, burst: u32) -> Self {
        let interval = Duration::from_secs_f64(1.0 / per_sec);
        RateLimiter {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
            tat: Mutex::new(None),
        }
    }

    /// Waits until the next request may be sent.
    pub(crate) async fn acquire(&self) {
        let at = self.reserve(Instant::now());
        if at > Instant::now() {
            tokio::time::sleep_until(at).await;
        }
    }

    /// Reserves the next slot at or after `now` and returns when it starts.
    fn reserve(&self, now: Instant) -> Instant {
        let mut tat = self.tat.lock().unwrap_or_else(PoisonError::into_inner);
        let theoretical = tat.map_or(now, |t| t.max(now));
        let at = theoretical
            .checked_sub(self.tolerance)
            .map_or(now, |t| t.max(now));
        *tat = Some(theoretical + self.interval);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn thirty_requests_at_ten_per_second_take_about_three_seconds() {
        let limiter = RateLimiter::new(10.0, 1);
        let start = Instant::now();
        for _ in 0..30 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(2900), "{took:?}");
        assert!(took < Duration::from_millis(3000), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_out_at_once_then_the_rate_applies() {
        let limiter = RateLimiter::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        for _ in 0..10 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1000) && took < Duration::from_millis(1100),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_rate() {
        let limiter = std::sync::Arc::new(RateLimiter::new(10.0, 1));
        let start = Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let l = limiter.clone();
                tokio::spawn(async move {
                    for _ in 0..5 {
                        l.acquire().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap_or_default();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(1900),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn idle_time_does_not_bank_more_than_the_burst() {
        let limiter = RateLimiter::new(10.0, 2);
        let t0 = Instant::now();
        assert_eq!(limiter.reserve(t0), t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(limiter.reserve(later), later);
        assert_eq!(limiter.reserve(later), later);
        assert_eq!(limiter.reserve(later), later + Duration::from_millis(100));
    }
}
