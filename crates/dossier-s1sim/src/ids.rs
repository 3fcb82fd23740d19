//! SentinelOne identifiers: decimal strings, compared as numbers, never parsed to `u64`.
//!
//! Real ids are snowflakes: `(milliseconds since ~2017-01-01) << 23 | low bits`
//! (`1112953674841025235` was created 2021-03-16, `1311010474425970168` 2021-12-14), so they
//! grow with creation time and have 19 digits today; a sanitized sample has 20 digits
//! (`55555555555555555555`), beyond `u64`. Keys are `u128`, which holds 38 digits.

/// Epoch of the snowflake ids, 2017-01-01T00:00:00Z in milliseconds.
const SNOWFLAKE_EPOCH_MS: i64 = 1_483_228_800_000;

/// Returns the numeric key of a canonical decimal id (no sign, no leading zero, ≤ 38 digits).
pub(crate) fn id_key(id: &str) -> Option<u128> {
    let canonical = !id.is_empty()
        && id.len() <= 38
        && id.bytes().all(|b| b.is_ascii_digit())
        && (id == "0" || !id.starts_with('0'));
    if canonical {
        id.parse().ok()
    } else {
        None
    }
}

/// Returns a snowflake id for an object created at `us` (microseconds) with the given low
/// bits (`< 2^23`).
pub(crate) fn snowflake(us: i64, low: u32) -> u128 {
    let ms = (us.div_euclid(1000) - SNOWFLAKE_EPOCH_MS).max(1);
    let ms = u128::from(ms.unsigned_abs());
    (ms << 23) | u128::from(low & 0x7F_FFFF)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;
    use crate::time::parse_micros;

    #[test]
    fn ids_are_canonical_decimals() {
        assert_eq!(
            id_key("1112953674841025235"),
            Some(1_112_953_674_841_025_235)
        );
        assert_eq!(
            id_key("55555555555555555555"),
            Some(55_555_555_555_555_555_555)
        );
        assert_eq!(id_key("0"), Some(0));
        for bad in ["", "-1", "01", "12a", "1 2", &"9".repeat(39)] {
            assert_eq!(id_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn snowflakes_look_like_real_ids() {
        // Real threat 1112953674841025235 was created 2021-03-16T14:00:16.879105Z.
        let us = parse_micros("2021-03-16T14:00:16.879105Z").unwrap();
        let id = snowflake(us, 0).to_string();
        assert_eq!(id.len(), 19);
        assert_eq!(&id[..3], "111");
        assert!(snowflake(us + 1000, 0) > snowflake(us, 0x7F_FFFF));
    }
}
