//! The `GET /v1.0/security/alerts_v2` request of one page, and the cursor of a walk.
//!
//! Paging is on time boundaries, never on a deep `$skip` (PRODUCERS.md §1.4: Graph refuses
//! `$skip` past 500, and Elastic's poller stalled on it; its fix pages on
//! `lastUpdateDateTime`). A full page continues from its own highest `lastUpdateDateTime`
//! with `ge`, so alerts sharing that instant beyond the page are read, never skipped (those
//! on the page are read twice, and the store dedupes). A full page whose alerts all share one
//! instant cannot move the bound: only then does the walk follow Graph's `@odata.nextLink`.

use chrono::{DateTime, Timelike, Utc};
use url::Url;

/// The largest `$top` Graph honours (§1.4).
pub const MAX_TOP: u32 = 1000;

/// The alerts of Microsoft Defender for Endpoint among every Defender XDR source (§1.1).
pub const SERVICE_SOURCE: &str = "microsoftDefenderForEndpoint";

/// A lower bound on `lastUpdateDateTime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `lastUpdateDateTime ge t`.
    AtOrAfter(DateTime<Utc>),
    /// `lastUpdateDateTime gt t`.
    After(DateTime<Utc>),
}

/// Where the next page of a walk is read from; its text form is the walk's opaque cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// A fresh query from a bound.
    From(Bound),
    /// Graph's `@odata.nextLink`, followed only through a run of alerts sharing one instant.
    Link(String),
}

impl Cursor {
    /// Returns the cursor's text: `ge:<time>`, `gt:<time>` or `link:<url>`.
    #[must_use]
    pub fn encode(&self) -> String {
        match self {
            Cursor::From(Bound::AtOrAfter(t)) => format!("ge:{}", format_ticks(*t)),
            Cursor::From(Bound::After(t)) => format!("gt:{}", format_ticks(*t)),
            Cursor::Link(url) => format!("link:{url}"),
        }
    }

    /// Reads a cursor's text.
    ///
    /// # Errors
    /// A sentence when the text is no cursor of this source.
    pub fn decode(text: &str) -> Result<Cursor, String> {
        let text = text.trim();
        let (kind, rest) = text
            .split_once(':')
            .ok_or_else(|| "the cursor is not a Defender cursor".to_owned())?;
        let time = || {
            dossier_domain::time::parse_lenient(rest)
                .ok_or_else(|| "the cursor's time is not a timestamp".to_owned())
        };
        match kind {
            "ge" => Ok(Cursor::From(Bound::AtOrAfter(time()?))),
            "gt" => Ok(Cursor::From(Bound::After(time()?))),
            "link" => Ok(Cursor::Link(rest.to_owned())),
            _ => Err("the cursor is not a Defender cursor".to_owned()),
        }
    }
}

/// One page's request: alerts of Defender for Endpoint from a bound, oldest update first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    pub bound: Option<Bound>,
    /// `$top`, 1 to [`MAX_TOP`].
    pub top: u32,
}

impl AlertQuery {
    /// Returns the `$filter` expression. Times keep Graph's full precision, 7 fractional
    /// digits (§1.3): a coarser bound would re-read or, with `gt`, skip alerts.
    #[must_use]
    pub fn filter(&self) -> String {
        let source = format!("serviceSource eq '{SERVICE_SOURCE}'");
        match self.bound {
            Some(Bound::AtOrAfter(t)) => {
                format!("{source} and lastUpdateDateTime ge {}", format_ticks(t))
            }
            Some(Bound::After(t)) => {
                format!("{source} and lastUpdateDateTime gt {}", format_ticks(t))
            }
            None => source,
        }
    }

    /// Returns the URL of the request under the Graph root (`https://graph.microsoft.com`).
    #[must_use]
    pub fn url(&self, graph_root: &Url) -> Url {
        let mut url = alerts_url(graph_root);
        url.query_pairs_mut()
            .append_pair("$filter", &self.filter())
            // Undocumented for alerts_v2 but sent by Elastic and honoured (§1.1).
            .append_pair("$orderby", "lastUpdateDateTime asc")
            .append_pair("$top", &self.top.clamp(1, MAX_TOP).to_string());
        url
    }
}

/// `{graph}/v1.0/security/alerts_v2`.
#[must_use]
pub fn alerts_url(graph_root: &Url) -> Url {
    let mut url = graph_root.clone();
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{path}/v1.0/security/alerts_v2"));
    url
}

/// Formats a time as Graph writes it: UTC, 7 fractional digits (100 ns ticks), `Z`. Finer
/// digits are cut, which moves a lower bound earlier, never later.
#[must_use]
pub fn format_ticks(t: DateTime<Utc>) -> String {
    let ticks = t.nanosecond() % 1_000_000_000 / 100;
    format!("{}.{ticks:07}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// Returns whether `link` may be followed with the token: it must be an `alerts_v2` URL on the
/// configured Graph origin, so that a tampered cursor cannot send the token elsewhere.
#[must_use]
pub fn is_own_link(link: &Url, graph_root: &Url) -> bool {
    let own = alerts_url(graph_root);
    link.scheme() == own.scheme()
        && link.host_str() == own.host_str()
        && link.port_or_known_default() == own.port_or_known_default()
        && link.path() == own.path()
        && link.username().is_empty()
        && link.password().is_none()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        dossier_domain::time::parse_lenient(s).unwrap()
    }

    #[test]
    fn times_keep_seven_digits() {
        assert_eq!(
            format_ticks(t("2021-05-02T14:19:01.3266667Z")),
            "2021-05-02T14:19:01.3266667Z"
        );
        assert_eq!(
            format_ticks(t("2021-05-02T14:19:01Z")),
            "2021-05-02T14:19:01.0000000Z"
        );
        assert_eq!(
            format_ticks(t("2021-05-02T14:19:01.123456789Z")),
            "2021-05-02T14:19:01.1234567Z"
        );
    }

    #[test]
    fn cursors_round_trip() {
        for c in [
            Cursor::From(Bound::AtOrAfter(t("2021-05-02T14:19:01.3266667Z"))),
            Cursor::From(Bound::After(t("2021-05-02T14:19:01.0000001Z"))),
            Cursor::Link("https://graph.microsoft.com/v1.0/security/alerts_v2?$skiptoken=x".into()),
        ] {
            assert_eq!(Cursor::decode(&c.encode()), Ok(c));
        }
        assert!(Cursor::decode("nonsense").is_err());
        assert!(Cursor::decode("ge:tomorrow").is_err());
        assert!(Cursor::decode("xx:1").is_err());
    }

    #[test]
    fn the_url_filters_on_the_source_and_the_bound() {
        let root = Url::parse("https://graph.microsoft.com").unwrap();
        let q = AlertQuery {
            bound: Some(Bound::After(t("2024-01-02T03:04:05.1234567Z"))),
            top: 5000,
        };
        let url = q.url(&root);
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/v1.0/security/alerts_v2");
        assert_eq!(
            pairs,
            [
                (
                    "$filter".to_owned(),
                    "serviceSource eq 'microsoftDefenderForEndpoint' and lastUpdateDateTime gt \
                     2024-01-02T03:04:05.1234567Z"
                        .to_owned()
                ),
                ("$orderby".to_owned(), "lastUpdateDateTime asc".to_owned()),
                ("$top".to_owned(), "1000".to_owned()),
            ]
        );
    }

    #[test]
    fn only_links_to_the_graph_origin_are_followed() {
        let root = Url::parse("https://graph.microsoft.com/").unwrap();
        let ok =
            Url::parse("https://graph.microsoft.com/v1.0/security/alerts_v2?$skiptoken=1").unwrap();
        assert!(is_own_link(&ok, &root));
        for bad in [
            "https://evil.example/v1.0/security/alerts_v2",
            "http://graph.microsoft.com/v1.0/security/alerts_v2",
            "https://graph.microsoft.com:444/v1.0/security/alerts_v2",
            "https://graph.microsoft.com/v1.0/me",
            "https://u:p@graph.microsoft.com/v1.0/security/alerts_v2",
        ] {
            assert!(!is_own_link(&Url::parse(bad).unwrap(), &root), "{bad}");
        }
    }
}
