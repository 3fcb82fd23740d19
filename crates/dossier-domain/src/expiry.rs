//! When to warn about a connector's API token: 30 and 7 days before it expires, and what to
//! say when it has.

use chrono::{DateTime, Duration, Utc};

/// The reason a connector shows once its token has expired.
pub const EXPIRED_REASON: &str = "token expired — create a new service-user token";

/// How close a token is to its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Expiry {
    /// More than 30 days left, or the expiry is unknown.
    Fine,
    /// 30 days or less.
    Within30Days,
    /// 7 days or less.
    Within7Days,
    Expired,
}

impl Expiry {
    /// Returns the state of a token expiring at `expires_at`, seen at `now`.
    #[must_use]
    pub fn of(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        let Some(at) = expires_at else {
            return Expiry::Fine;
        };
        let left = at - now;
        if left <= Duration::zero() {
            Expiry::Expired
        } else if left <= Duration::days(7) {
            Expiry::Within7Days
        } else if left <= Duration::days(30) {
            Expiry::Within30Days
        } else {
            Expiry::Fine
        }
    }

    /// The number stored to remember which warning was given (0, 30, 7, -1).
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            Expiry::Fine => 0,
            Expiry::Within30Days => 30,
            Expiry::Within7Days => 7,
            Expiry::Expired => -1,
        }
    }

    /// The inverse of [`Expiry::code`]; unknown codes read as `Fine`.
    #[must_use]
    pub fn from_code(code: i64) -> Self {
        match code {
            30 => Expiry::Within30Days,
            7 => Expiry::Within7Days,
            -1 => Expiry::Expired,
            _ => Expiry::Fine,
        }
    }

    /// The warning to give on reaching this state, if any.
    #[must_use]
    pub fn warning(self, expires_at: DateTime<Utc>) -> Option<String> {
        let when = expires_at.format("%Y-%m-%d %H:%M UTC");
        match self {
            Expiry::Within30Days => Some(format!(
                "the API token expires within 30 days ({when}) — create a new service-user token"
            )),
            Expiry::Within7Days => Some(format!(
                "the API token expires within 7 days ({when}) — create a new service-user token"
            )),
            Expiry::Fine | Expiry::Expired => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_30_and_7_days() {
        let now = Utc::now();
        let at = |d: i64| Some(now + Duration::days(d));
        assert_eq!(Expiry::of(None, now), Expiry::Fine);
        assert_eq!(Expiry::of(at(31), now), Expiry::Fine);
        assert_eq!(Expiry::of(at(30), now), Expiry::Within30Days);
        assert_eq!(Expiry::of(at(8), now), Expiry::Within30Days);
        assert_eq!(Expiry::of(at(7), now), Expiry::Within7Days);
        assert_eq!(
            Expiry::of(Some(now + Duration::seconds(1)), now),
            Expiry::Within7Days
        );
        assert_eq!(Expiry::of(Some(now), now), Expiry::Expired);
        for e in [
            Expiry::Fine,
            Expiry::Within30Days,
            Expiry::Within7Days,
            Expiry::Expired,
        ] {
            assert_eq!(Expiry::from_code(e.code()), e);
        }
        assert!(Expiry::Within7Days
            .warning(now)
            .is_some_and(|w| w.contains("7 days")));
        assert!(Expiry::Expired.warning(now).is_none());
    }
}
