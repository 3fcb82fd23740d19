//! Graph's timestamps: UTC with 7 fractional digits (100 ns ticks), e.g.
//! `2021-05-02T14:19:01.3266667Z`. The emulator keeps times as ticks since the Unix epoch.

use chrono::{DateTime, Utc};

/// Ticks (100 ns) since the Unix epoch.
pub(crate) fn ticks(t: DateTime<Utc>) -> i64 {
    t.timestamp()
        .saturating_mul(10_000_000)
        .saturating_add(i64::from(t.timestamp_subsec_nanos() / 100))
}

/// The time of a tick count.
pub(crate) fn time(ticks: i64) -> DateTime<Utc> {
    let secs = ticks.div_euclid(10_000_000);
    let nanos = u32::try_from(ticks.rem_euclid(10_000_000) * 100).unwrap_or(0);
    DateTime::from_timestamp(secs, nanos).unwrap_or_default()
}

/// Formats a time as Graph does: `2021-05-02T14:19:01.3266667Z`.
pub fn format_ticks(t: DateTime<Utc>) -> String {
    let frac = t.timestamp_subsec_nanos() / 100;
    format!("{}.{frac:07}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// Formats ticks as Graph does.
pub(crate) fn format(ticks: i64) -> String {
    format_ticks(time(ticks))
}

/// Parses a `$filter` datetime literal or a JSON timestamp (RFC 3339, any fraction) into ticks.
pub(crate) fn parse(text: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| ticks(t.with_timezone(&Utc)))
}

/// .NET ticks (100 ns since 0001-01-01) of a Unix tick count: Defender's alert ids carry them
/// (`da637551227677560813_…` was created on 2021-04-27).
pub(crate) fn dotnet(ticks: i64) -> i64 {
    ticks.saturating_add(621_355_968_000_000_000)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ticks_round_trip_with_seven_digits() {
        let t = parse("2021-05-02T14:19:01.3266667Z").unwrap();
        assert_eq!(format(t), "2021-05-02T14:19:01.3266667Z");
        assert_eq!(
            format(parse("2021-05-02T14:19:01Z").unwrap()),
            "2021-05-02T14:19:01.0000000Z"
        );
        assert_eq!(parse("yesterday"), None);
        // The docs sample's id and creation time agree.
        let created = parse("2021-04-27T12:19:27.7211305Z").unwrap();
        assert_eq!(
            dotnet(created) / 10_000_000,
            637_551_227_677_560_813 / 10_000_000
        );
    }
}
