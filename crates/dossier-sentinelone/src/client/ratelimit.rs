//! The client-side throttle (SENTINELONE.md §1.5, §6.8): `/threats` allows about 10 req/s per
//! token, so the client spaces its own requests instead of collecting 429s.
//!
//! A token bucket in its GCRA form: each caller reserves the next free slot under a short lock
//! and then sleeps until it, so waiters are served in order and nobody busy-loops. Time is
//! `tokio::time`, so tests drive it with a paused clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

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

/// The throttle of a token at a tenant, shared by every client of the process that uses them:
/// SentinelOne counts requests per token, so connectors configured with the same token must
/// share one budget rather than each spend its own. The registry keys on a digest of the tenant
/// host and the token, never the token, and lets go of a throttle no client holds. The rate is
/// that of the first client; clients of one token are configured alike.
pub(crate) fn for_token(
    base_url: &url::Url,
    token: &str,
    per_sec: f64,
    burst: u32,
) -> Arc<RateLimiter> {
    static BY_TOKEN: OnceLock<Mutex<HashMap<[u8; 32], Weak<RateLimiter>>>> = OnceLock::new();
    let mut digest = Sha256::new();
    digest.update(base_url.host_str().unwrap_or_default().to_ascii_lowercase());
    digest.update(
        base_url
            .port_or_known_default()
            .unwrap_or_default()
            .to_be_bytes(),
    );
    digest.update([0]);
    digest.update(token.trim());
    let key: [u8; 32] = digest.finalize().into();
    let mut by_token = BY_TOKEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(shared) = by_token.get(&key).and_then(Weak::upgrade) {
        return shared;
    }
    by_token.retain(|_, held| held.strong_count() > 0);
    let limiter = Arc::new(RateLimiter::new(per_sec, burst));
    by_token.insert(key, Arc::downgrade(&limiter));
    limiter
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
        assert!(took < Duration::from_secs(3), "{took:?}");
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
            took >= Duration::from_secs(1) && took < Duration::from_millis(1100),
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
