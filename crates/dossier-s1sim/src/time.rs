//! Timestamps as the real API writes and accepts them.
//!
//! Internally every timestamp is microseconds since the Unix epoch (`i64`): the API's
//! precision is the microsecond (`2021-03-16T14:00:16.879105Z`), and integers make the sorted
//! indexes cheap.

use chrono::{DateTime, NaiveDateTime, Utc};

/// Returns the instant as microseconds since the epoch.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Formats microseconds like the API: `2021-03-16T14:00:16.879105Z`.
pub(crate) fn format_micros(us: i64) -> String {
    match DateTime::<Utc>::from_timestamp_micros(us) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => "1970-01-01T00:00:00.000000Z".to_owned(),
    }
}

/// Formats microseconds with millisecond precision, like `identifiedAt` (`…14.188000Z`).
pub(crate) fn format_millis(us: i64) -> String {
    format_micros(us - us.rem_euclid(1000))
}

/// Parses a timestamp the way the tenant accepts it: RFC 3339 (`…Z` or an offset, any
/// fraction), or naive UTC with a space or a `T` (`2020-08-14 14:09:44.959263`, sent by
/// Rapid7's plugin and accepted, see rapid7/insightconnect-plugins#625).
pub(crate) fn parse_micros(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_micros());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_api() {
        let us = parse_micros("2021-03-16T14:00:16.879105Z").unwrap();
        assert_eq!(format_micros(us), "2021-03-16T14:00:16.879105Z");
        assert_eq!(format_millis(us), "2021-03-16T14:00:16.879000Z");
    }

    #[test]
    fn parses_the_formats_clients_send() {
        let exact = parse_micros("2020-08-14T14:09:44.959263Z").unwrap();
        assert_eq!(parse_micros("2020-08-14 14:09:44.959263"), Some(exact));
        assert_eq!(parse_micros("2020-08-14T14:09:44.959263"), Some(exact));
        assert_eq!(
            parse_micros("2020-08-14T16:09:44.959263+02:00"),
            Some(exact)
        );
        assert_eq!(parse_micros("2020-08-14T14:09:44Z"), Some(exact - 959_263));
        assert_eq!(parse_micros("2020-08-14 14:09:44"), Some(exact - 959_263));
        assert_eq!(parse_micros("yesterday"), None);
        assert_eq!(parse_micros("2020-13-14T14:09:44Z"), None);
        assert_eq!(parse_micros(""), None);
    }
}
