//! Faults: the next answers of the alert endpoints fail the ways the real API and proxies do.

use std::time::Duration;

/// One queued fault, served to the next request of an `/alerts/*` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `X-Ratelimit-Remaining: 0` and `X-Ratelimit-Retryafter` this many seconds
    /// ahead (epoch seconds, PRODUCERS.md §2.5).
    RateLimited { retry_after_secs: u64 },
    /// 500.
    ServerError,
    /// 401 "access denied, invalid bearer token" (a token revoked or expired early).
    Unauthorized,
    /// 403 "access denied, authorization failed".
    Forbidden,
    /// 200 with an nginx HTML page.
    Garbage,
    /// The real answer, after this long.
    Slow(Duration),
}

/// How a list of faults is written, for [`Fault::parse_list`].
pub const FAULT_LIST_SYNTAX: &str = "comma-separated, each optionally repeated as NAME*N: \
     429, 429:SECS (X-Ratelimit-Retryafter that many seconds ahead), 500, 401, 403, garbage, \
     slow:SECS";

impl Fault {
    /// Reads a list of faults such as `429:2,500*3,slow:5`, in the order they are served.
    ///
    /// # Errors
    /// What is wrong with the first item that cannot be read, and how a list is written.
    pub fn parse_list(text: &str) -> Result<Vec<Fault>, String> {
        dossier_simkit::faults::parse_list(text, |item| {
            Ok(match (item.name, item.arg) {
                ("429", None) => Fault::RateLimited {
                    retry_after_secs: 1,
                },
                ("429", Some(_)) => Fault::RateLimited {
                    retry_after_secs: item.number("seconds")?,
                },
                ("500", None) => Fault::ServerError,
                ("401", None) => Fault::Unauthorized,
                ("403", None) => Fault::Forbidden,
                ("garbage", None) => Fault::Garbage,
                ("slow", _) => Fault::Slow(Duration::from_secs(item.number("seconds")?)),
                _ => return Err(format!("{:?}: not a fault; {FAULT_LIST_SYNTAX}", item.text)),
            })
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_are_read_in_order_with_repeats() {
        assert_eq!(
            Fault::parse_list(" 429:2, 500*2 ,401,403,garbage,slow:1,429").unwrap(),
            [
                Fault::RateLimited {
                    retry_after_secs: 2
                },
                Fault::ServerError,
                Fault::ServerError,
                Fault::Unauthorized,
                Fault::Forbidden,
                Fault::Garbage,
                Fault::Slow(Duration::from_secs(1)),
                Fault::RateLimited {
                    retry_after_secs: 1
                },
            ]
        );
        assert!(Fault::parse_list("").unwrap().is_empty());
        for (list, says) in [
            ("500,404", "\"404\": not a fault"),
            ("slow", "slow takes seconds"),
            ("500*0", "repeat count"),
            ("500:3", "not a fault"),
        ] {
            let e = Fault::parse_list(list).unwrap_err();
            assert!(e.contains(says), "{list}: {e}");
        }
    }
}
