//! Lenient parsing and strict formatting of timestamps.
//!
//! SentinelOne sends 6-digit microseconds usually, but also no fraction, milliseconds, a missing
//! `Z`, naive `YYYY-MM-DD HH:MM:SS` and epoch zero (SENTINELONE.md §6.9). Everything Dossier
//! writes is RFC 3339 UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeZone, Utc};

/// Parses a timestamp in any of the shapes producers are seen to send. Returns `None` for text
/// that is not a timestamp.
#[must_use]
pub fn parse_lenient(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // Naive forms are taken as UTC.
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&n));
        }
    }
    // "+0000" offsets without a colon.
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    None
}

/// Formats a timestamp as RFC 3339 UTC with microseconds and `Z`, the form SentinelOne expects.
#[must_use]
pub fn format_micros(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Microseconds since the epoch, the form timestamps take in storage.
#[must_use]
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`]. Out-of-range values clamp to the epoch.
#[must_use]
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Writes a length of time in the largest whole unit it is a multiple of: `12 hours`, `1 day`,
/// `90 minutes`, `1 second`. Negative lengths read as their size.
#[must_use]
pub fn period(d: chrono::TimeDelta) -> String {
    let secs = d.num_seconds().unsigned_abs();
    let (n, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(size, _)| secs > 0 && secs % size == 0)
        .map_or((secs, "second"), |(size, unit)| (secs / size, unit));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_shape_seen_in_the_wild() {
        for s in [
            "2021-03-16T14:00:16.879105Z",
            "2023-03-16T18:23:01Z",
            "2024-01-02T03:04:05.123Z",
            "2020-08-14 14:09:44.959263",
            "2020-08-14T14:09:44.959263",
            "1970-01-01T00:00:00Z",
            "2185-01-01T00:00:00Z",
            "2021-03-16T14:00:16.879105+00:00",
            "2021-03-16T14:00:16.879105+0000",
        ] {
            assert!(parse_lenient(s).is_some(), "{s}");
        }
        for s in ["", "null", "yesterday", "2021-13-01T00:00:00Z"] {
            assert!(parse_lenient(s).is_none(), "{s}");
        }
    }

    #[test]
    fn periods_read_in_their_largest_whole_unit() {
        use chrono::TimeDelta;
        assert_eq!(period(TimeDelta::hours(12)), "12 hours");
        assert_eq!(period(TimeDelta::hours(24)), "1 day");
        assert_eq!(period(TimeDelta::minutes(90)), "90 minutes");
        assert_eq!(period(TimeDelta::seconds(1)), "1 second");
        assert_eq!(period(TimeDelta::seconds(61)), "61 seconds");
        assert_eq!(period(TimeDelta::zero()), "0 seconds");
    }

    #[test]
    fn round_trips_micros() {
        let t = parse_lenient("2021-03-16T14:00:16.879105Z").unwrap_or_default();
        assert_eq!(
            format_micros(from_micros(to_micros(t))),
            "2021-03-16T14:00:16.879105Z"
        );
    }
}
