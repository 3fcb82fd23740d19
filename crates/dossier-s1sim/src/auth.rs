//! API-token authentication, permissions, scope and the per-token rate limit.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};

use crate::config::TokenSpec;

/// A registered token.
#[derive(Debug, Clone)]
pub(crate) struct TokenState {
    pub spec: TokenSpec,
    /// When the tenant learned about it (reported as `createdAt` by `api-token-details`).
    pub created_at: DateTime<Utc>,
}

/// The caller, once authenticated.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub token: String,
    pub can_view_threats: bool,
    pub sites: Option<HashSet<String>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    /// 401: no, unknown, expired or revoked token.
    Unauthenticated,
}

/// Returns the token of an `Authorization: ApiToken <t>` header; the scheme is
/// case-insensitive (the SOAR connector sends `APIToken`).
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("apitoken") && !token.is_empty()).then_some(token)
}

/// Looks the token up and checks its expiry.
pub(crate) fn check(
    tokens: &HashMap<String, TokenState>,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Caller, Denied> {
    let state = tokens.get(token).ok_or(Denied::Unauthenticated)?;
    if state.spec.expires_at.is_some_and(|at| at <= now) {
        return Err(Denied::Unauthenticated);
    }
    Ok(Caller {
        token: token.to_owned(),
        can_view_threats: state.spec.can_view_threats,
        sites: state
            .spec
            .site_ids
            .as_ref()
            .map(|s| s.iter().cloned().collect()),
        created_at: state.created_at,
        expires_at: state.spec.expires_at,
    })
}

/// A token bucket: `rate` per second, `5 × rate` burst.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    pub(crate) fn full(rate: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(rate) * 5.0,
            last: now,
        }
    }

    /// Takes one request; `Err(seconds)` tells how long until one is allowed again.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the wait is a positive number of seconds, at most a few, and `as` saturates"
    )]
    pub(crate) fn take(&mut self, rate: u32, now: Instant) -> Result<(), u64> {
        let rate = f64::from(rate.max(1));
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate * 5.0);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / rate).ceil() as u64).max(1))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::time::Duration;

    #[test]
    fn scheme_is_case_insensitive() {
        for scheme in ["ApiToken", "APIToken", "apitoken"] {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("{scheme} abc")).unwrap(),
            );
            assert_eq!(bearer_token(&h), Some("abc"));
        }
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(bearer_token(&h), None);
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[test]
    fn expired_tokens_are_refused() {
        let now = Utc::now();
        let mut spec = TokenSpec::new("t");
        spec.expires_at = Some(now - chrono::Duration::seconds(1));
        let tokens = HashMap::from([(
            "t".to_owned(),
            TokenState {
                spec,
                created_at: now,
            },
        )]);
        assert_eq!(
            check(&tokens, "t", now).unwrap_err(),
            Denied::Unauthenticated
        );
        assert_eq!(
            check(&tokens, "u", now).unwrap_err(),
            Denied::Unauthenticated
        );
    }

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = Bucket::full(2, t0);
        for _ in 0..10 {
            assert!(bucket.take(2, t0).is_ok());
        }
        assert_eq!(bucket.take(2, t0), Err(1));
        assert!(bucket.take(2, t0 + Duration::from_millis(500)).is_ok());
        assert!(bucket.take(2, t0 + Duration::from_millis(500)).is_err());
    }
}
