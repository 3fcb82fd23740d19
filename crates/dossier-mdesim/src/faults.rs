//! Fault injection for `GET /v1.0/security/alerts_v2`: each queued fault replaces or alters
//! one answer.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::auth::{graph_error, missing_roles, unauthenticated};

/// One injected fault; `Tenant::push_faults` queues them, each list request takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `TooManyRequests` with, if given, a `Retry-After` header (seconds).
    RateLimited { retry_after_secs: Option<u64> },
    /// 500 `InternalServerError`.
    ServerError,
    /// 503 `ServiceUnavailable`.
    Unavailable,
    /// Waits this long, then answers normally.
    Slow(Duration),
    /// 200 whose JSON body stops half-way.
    Truncated,
    /// 200 with an HTML page from a proxy.
    Garbage,
    /// 401 `InvalidAuthenticationToken`, whatever the token.
    Unauthorized,
    /// 403 "Missing application roles", whatever the token.
    MissingRoles,
}

/// How a list of faults is written, for [`Fault::parse_list`].
pub const FAULT_LIST_SYNTAX: &str = "comma-separated, each optionally repeated as NAME*N: \
     429, 429:SECS (with Retry-After), 500, 503, slow:SECS, truncated, garbage, 401, 403";

impl Fault {
    /// The answer that replaces the real one, or `None` when the real one is altered
    /// ([`Fault::alter`]) or merely delayed.
    pub(crate) fn replacement(&self) -> Option<Response> {
        Some(match self {
            Fault::RateLimited { retry_after_secs } => {
                let mut r = graph_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequests",
                    "Too many requests. Please retry after the time specified in Retry-After.",
                );
                if let Some(secs) = retry_after_secs {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
                }
                r
            }
            Fault::ServerError => graph_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "An internal server error occurred.",
            ),
            Fault::Unavailable => graph_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                "The service is temporarily unavailable.",
            ),
            Fault::Unauthorized => unauthenticated("Access token validation failure."),
            Fault::MissingRoles => missing_roles(&[crate::config::READ_ROLE], &[]),
            Fault::Garbage => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/html")
                .body(Body::from(
                    "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                ))
                .unwrap_or_default(),
            Fault::Slow(_) | Fault::Truncated => return None,
        })
    }

    /// Alters the real body.
    pub(crate) fn alter(&self, mut body: Vec<u8>) -> Vec<u8> {
        if *self == Fault::Truncated {
            body.truncate((body.len() / 2).max(1).min(body.len()));
        }
        body
    }

    /// Reads a list of faults such as `429:2,500*3,slow:5`, in the order they are served.
    ///
    /// # Errors
    /// What is wrong with the first item that cannot be read, and how a list is written.
    pub fn parse_list(text: &str) -> Result<Vec<Fault>, String> {
        dossier_simkit::faults::parse_list(text, |item| {
            Ok(match (item.name, item.arg) {
                ("429", None) => Fault::RateLimited {
                    retry_after_secs: None,
                },
                ("429", Some(_)) => Fault::RateLimited {
                    retry_after_secs: Some(item.number("seconds")?),
                },
                ("500", None) => Fault::ServerError,
                ("503", None) => Fault::Unavailable,
                ("slow", _) => Fault::Slow(Duration::from_secs(item.number("seconds")?)),
                ("truncated", None) => Fault::Truncated,
                ("garbage", None) => Fault::Garbage,
                ("401", None) => Fault::Unauthorized,
                ("403", None) => Fault::MissingRoles,
                _ => return Err(format!("{:?}: not a fault; {FAULT_LIST_SYNTAX}", item.text)),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fault_lists_are_read_in_order_with_repeats() {
        assert_eq!(
            Fault::parse_list(" 429:2, 500*2 ,slow:1,403,503,garbage,truncated,401,429").unwrap(),
            [
                Fault::RateLimited {
                    retry_after_secs: Some(2)
                },
                Fault::ServerError,
                Fault::ServerError,
                Fault::Slow(Duration::from_secs(1)),
                Fault::MissingRoles,
                Fault::Unavailable,
                Fault::Garbage,
                Fault::Truncated,
                Fault::Unauthorized,
                Fault::RateLimited {
                    retry_after_secs: None
                },
            ]
        );
        for (bad, says) in [
            ("404", "not a fault"),
            ("slow", "takes seconds"),
            ("500*0", "repeat"),
        ] {
            let e = Fault::parse_list(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
