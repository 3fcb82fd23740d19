//! The request a walk's window asks for, and the opaque cursor that continues it.
//!
//! Polling uses `GET /alerts/queries/alerts/v2` (ids, offset paging) then `POST
//! /alerts/entities/alerts/v2` (PRODUCERS.md §2.1), filtered on `product:'epp'` and
//! `updated_timestamp`, sorted `updated_timestamp|asc`. The query endpoints refuse
//! `offset + limit > 10,000` (§2.1, §2.8), so a walk never goes that deep: when the next page
//! would, the cursor moves the time bound up to the highest `updated_timestamp` received and
//! starts again at offset 0. Alerts that share that timestamp are read again (the store
//! dedupes on id and update time) rather than skipped: the vendor warns that ties among
//! live, re-sorted data have no stable order (§2.1), so an offset into them could skip one.

use chrono::{DateTime, SecondsFormat, Utc};
use dossier_domain::time::parse_lenient;
use dossier_source::Window;

/// The query endpoints' ceiling: `offset + limit` at most this (§2.1).
pub const QUERY_WINDOW: u32 = 10_000;

/// The most composite ids one `POST /alerts/entities/alerts/v2` (or `PATCH …/v3`) takes: more
/// gets a 413 (§2.1, [I16]).
pub const MAX_IDS_PER_CALL: usize = 1000;

/// Where the next page of a walk starts: the walk's time bound and the offset under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Alerts updated at (`inclusive`) or after this; `None`: from the beginning.
    pub bound: Option<DateTime<Utc>>,
    pub inclusive: bool,
    pub offset: u32,
}

/// The longest cursor taken back: ours are about fifty characters.
const MAX_CURSOR_LEN: usize = 200;

impl Cursor {
    /// Returns the cursor as the opaque text a checkpoint keeps.
    #[must_use]
    pub fn encode(&self) -> String {
        let bound = self.bound.map_or_else(
            || "-".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Nanos, true),
        );
        let op = if self.inclusive { "ge" } else { "gt" };
        format!("cs1|{bound}|{op}|{}", self.offset)
    }

    /// Reads a cursor written by [`Cursor::encode`].
    ///
    /// # Errors
    /// A sentence saying the cursor is not one of ours.
    pub fn decode(text: &str) -> Result<Cursor, String> {
        let bad = || "the cursor is not a CrowdStrike walk's cursor".to_owned();
        if text.len() > MAX_CURSOR_LEN {
            return Err(bad());
        }
        let mut parts = text.trim().split('|');
        let (Some("cs1"), Some(bound), Some(op), Some(offset), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let bound = match bound {
            "-" => None,
            t => Some(parse_lenient(t).ok_or_else(bad)?),
        };
        let inclusive = match op {
            "ge" => true,
            "gt" => false,
            _ => return Err(bad()),
        };
        let offset: u32 = offset.parse().map_err(|_| bad())?;
        if offset >= QUERY_WINDOW {
            return Err(bad());
        }
        Ok(Cursor {
            bound,
            inclusive,
            offset,
        })
    }
}

/// One `GET /alerts/queries/alerts/v2` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    pub at: Cursor,
    /// Ids per page, 1 to [`MAX_IDS_PER_CALL`]: one page is one entities call.
    pub limit: u32,
}

impl AlertQuery {
    /// The request a window asks for: its cursor when a walk is under way, else its bound.
    ///
    /// # Errors
    /// When the window's cursor is not one of ours.
    pub fn from_window(w: &Window) -> Result<AlertQuery, String> {
        let at = match &w.cursor {
            Some(c) => Cursor::decode(c)?,
            None => match (w.updated_gte, w.updated_gt) {
                (Some(t), _) => Cursor {
                    bound: Some(t),
                    inclusive: true,
                    offset: 0,
                },
                (None, Some(t)) => Cursor {
                    bound: Some(t),
                    inclusive: false,
                    offset: 0,
                },
                (None, None) => Cursor {
                    bound: None,
                    inclusive: true,
                    offset: 0,
                },
            },
        };
        let cap = u32::try_from(MAX_IDS_PER_CALL).unwrap_or(u32::MAX);
        let limit = w.limit.clamp(1, cap).min(QUERY_WINDOW - at.offset);
        Ok(AlertQuery { at, limit })
    }

    /// The FQL filter: endpoint alerts (§2.4 `product`), updated at or after the bound.
    #[must_use]
    pub fn filter(&self) -> String {
        match self.at.bound {
            None => "product:'epp'".to_owned(),
            Some(t) => format!(
                "product:'epp'+updated_timestamp:{}'{}'",
                if self.at.inclusive { ">=" } else { ">" },
                t.to_rfc3339_opts(SecondsFormat::Nanos, true)
            ),
        }
    }

    /// The query string's pairs.
    #[must_use]
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("filter", self.filter()),
            ("sort", "updated_timestamp|asc".to_owned()),
            ("limit", self.limit.to_string()),
            ("offset", self.at.offset.to_string()),
        ]
    }

    /// Tells whether the page after one of `received` ids moves the walk's bound (it would pass
    /// the offset ceiling), and so needs the page's latest update time.
    #[must_use]
    pub fn moves_bound(&self, received: usize) -> bool {
        let received = u32::try_from(received).unwrap_or(u32::MAX);
        received >= self.limit
            && self
                .at
                .offset
                .saturating_add(received)
                .saturating_add(self.limit)
                > QUERY_WINDOW
    }

    /// Where the walk goes on after a page of `received` ids whose alerts' highest
    /// `updated_timestamp` is `page_max`; `None` when the page was the walk's last (short).
    #[must_use]
    pub fn next(&self, received: usize, page_max: Option<DateTime<Utc>>) -> Option<Cursor> {
        let received = u32::try_from(received).unwrap_or(u32::MAX);
        if received < self.limit {
            return None;
        }
        let offset = self.at.offset.saturating_add(received);
        if offset.saturating_add(self.limit) <= QUERY_WINDOW {
            return Some(Cursor {
                offset,
                ..self.at.clone()
            });
        }
        // Deeper would pass the 10,000 ceiling: move the bound up instead (see the module doc).
        let max = page_max?;
        if self.at.bound.is_none_or(|b| max > b) {
            return Some(Cursor {
                bound: Some(max),
                inclusive: true,
                offset: 0,
            });
        }
        // Ten thousand alerts updated at one nanosecond: nothing deeper can be read, so the
        // walk steps past that instant rather than read the same window forever.
        tracing::warn!(
            updated_timestamp = %max,
            "more alerts share one updated_timestamp than the API lets a walk page through; \
             stepping past it"
        );
        Some(Cursor {
            bound: Some(max),
            inclusive: false,
            offset: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        parse_lenient(s).unwrap()
    }

    fn window(gte: Option<&str>, gt: Option<&str>, cursor: Option<String>, limit: u32) -> Window {
        Window {
            updated_gte: gte.map(t),
            updated_gt: gt.map(t),
            cursor,
            limit,
        }
    }

    #[test]
    fn cursors_round_trip_to_the_nanosecond_and_refuse_strangers() {
        let c = Cursor {
            bound: Some(t("2023-11-03T19:00:23.985007341Z")),
            inclusive: false,
            offset: 2000,
        };
        assert_eq!(c.encode(), "cs1|2023-11-03T19:00:23.985007341Z|gt|2000");
        assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        let none = Cursor {
            bound: None,
            inclusive: true,
            offset: 0,
        };
        assert_eq!(Cursor::decode(&none.encode()), Ok(none));
        for bad in [
            "",
            "abc",
            "cs1|-|ge",
            "cs1|-|eq|0",
            "cs1|x|ge|0",
            "cs1|-|ge|10000",
            "cs1|-|ge|1|2",
        ] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_filter_names_endpoint_alerts_and_the_bound() {
        let q = AlertQuery::from_window(&window(Some("2024-01-02T03:04:05Z"), None, None, 500))
            .unwrap();
        assert_eq!(
            q.filter(),
            "product:'epp'+updated_timestamp:>='2024-01-02T03:04:05.000000000Z'"
        );
        let q = AlertQuery::from_window(&window(None, Some("2024-01-02T03:04:05.5Z"), None, 5000))
            .unwrap();
        assert_eq!(q.limit, 1000, "one page is one entities call");
        assert_eq!(
            q.to_pairs()[0].1,
            "product:'epp'+updated_timestamp:>'2024-01-02T03:04:05.500000000Z'"
        );
        assert_eq!(q.to_pairs()[1].1, "updated_timestamp|asc");
        let q = AlertQuery::from_window(&window(None, None, None, 0)).unwrap();
        assert_eq!((q.filter().as_str(), q.limit), ("product:'epp'", 1));
    }

    #[test]
    fn a_walk_pages_by_offset_then_moves_its_bound_before_ten_thousand() {
        let start = t("2024-01-01T00:00:00Z");
        let mut q =
            AlertQuery::from_window(&window(Some("2024-01-01T00:00:00Z"), None, None, 1000))
                .unwrap();
        for page in 1..10u32 {
            let next = q.next(1000, Some(start)).unwrap();
            assert_eq!((next.bound, next.offset), (Some(start), page * 1000));
            q.at = next;
        }
        // The tenth page would end at 10,000: the next starts from the highest time seen.
        let max = t("2024-01-05T00:00:00.123456789Z");
        let next = q.next(1000, Some(max)).unwrap();
        assert_eq!(
            next,
            Cursor {
                bound: Some(max),
                inclusive: true,
                offset: 0
            }
        );
        // A short page ends the walk.
        assert_eq!(q.next(999, Some(max)), None);
    }

    #[test]
    fn ten_thousand_ties_are_stepped_past_not_read_forever() {
        let tie = t("2024-01-01T00:00:00Z");
        let q = AlertQuery {
            at: Cursor {
                bound: Some(tie),
                inclusive: true,
                offset: 9000,
            },
            limit: 1000,
        };
        assert_eq!(
            q.next(1000, Some(tie)),
            Some(Cursor {
                bound: Some(tie),
                inclusive: false,
                offset: 0
            })
        );
    }

    #[test]
    fn a_cursor_deep_in_the_window_asks_for_no_more_than_is_left() {
        let c = Cursor {
            bound: None,
            inclusive: true,
            offset: 9500,
        }
        .encode();
        let q = AlertQuery::from_window(&window(None, None, Some(c), 1000)).unwrap();
        assert_eq!(q.limit, 500);
        assert!(AlertQuery::from_window(&window(None, None, Some("x".into()), 10)).is_err());
    }
}
