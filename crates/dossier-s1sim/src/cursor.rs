//! Opaque paging cursors: base64 of the last row's sort value and id, bound to the query.
//!
//! A cursor carries the query's fingerprint (a hash of every filter and sort parameter), so
//! following it with another filter set is a 400, which catches pollers that change their
//! window while walking (SENTINELONE.md pitfall 5).

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The keyset position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Position {
    /// Time sorts: `(µs, id)`.
    Time(i64, u128),
    /// Id sort.
    Id(u128),
    /// Facet sorts: `(value, id)`.
    Text(String, u128),
}

impl Position {
    pub(crate) fn id(&self) -> u128 {
        match self {
            Position::Time(_, id) | Position::Id(id) | Position::Text(_, id) => *id,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Query fingerprint.
    q: String,
    /// Sort name.
    s: String,
    /// Sort value (decimal µs or text), absent for the id sort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    v: Option<String>,
    /// Last id.
    i: String,
}

/// Returns the opaque cursor for `position` under the query `fingerprint` and `sort`.
pub(crate) fn encode(fingerprint: &str, sort: &str, position: &Position) -> String {
    let (v, i) = match position {
        Position::Time(t, id) => (Some(t.to_string()), id),
        Position::Id(id) => (None, id),
        Position::Text(s, id) => (Some(s.clone()), id),
    };
    let wire = Wire {
        q: fingerprint.to_owned(),
        s: sort.to_owned(),
        v,
        i: i.to_string(),
    };
    STANDARD.encode(serde_json::to_vec(&wire).unwrap_or_default())
}

/// Decodes a cursor; the error is the 400 detail. A `+` turned into a space by a client that
/// did not percent-encode the cursor is tolerated.
pub(crate) fn decode(
    cursor: &str,
    fingerprint: &str,
    sort: &str,
    time_sort: bool,
) -> Result<Position, String> {
    let invalid = || "cursor: Invalid cursor.".to_owned();
    let text = cursor.trim().replace(' ', "+");
    let bytes = STANDARD
        .decode(&text)
        .or_else(|_| URL_SAFE.decode(&text))
        .map_err(|_| invalid())?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if wire.q != fingerprint || wire.s != sort {
        return Err("cursor: The cursor does not match the query filters or sort.".to_owned());
    }
    let id: u128 = crate::ids::id_key(&wire.i).ok_or_else(invalid)?;
    match (wire.v, time_sort) {
        (None, _) => Ok(Position::Id(id)),
        (Some(v), true) => Ok(Position::Time(v.parse().map_err(|_| invalid())?, id)),
        (Some(v), false) => Ok(Position::Text(v, id)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_binds_to_the_query() {
        let p = Position::Time(1_615_903_216_879_105, 55_555_555_555_555_555_555);
        let c = encode("abc", "updatedAt", &p);
        assert_eq!(decode(&c, "abc", "updatedAt", true).unwrap(), p);
        assert!(decode(&c, "abd", "updatedAt", true).is_err());
        assert!(decode(&c, "abc", "createdAt", true).is_err());
        assert!(decode("not base64!", "abc", "updatedAt", true).is_err());
        assert!(decode(&STANDARD.encode("{}"), "abc", "updatedAt", true).is_err());
        let t = Position::Text("mitigated".into(), 4);
        assert_eq!(
            decode(
                &encode("q", "mitigationStatus", &t),
                "q",
                "mitigationStatus",
                false
            )
            .unwrap(),
            t
        );
        let i = Position::Id(9);
        assert_eq!(decode(&encode("q", "id", &i), "q", "id", false).unwrap(), i);
    }

    #[test]
    fn tolerates_an_unencoded_plus() {
        // JSON text rarely encodes to a '+'; non-ASCII sort values do.
        let found = (0..5000).find_map(|n| {
            let p = Position::Text(format!("\u{e9}{n}~>?"), 7);
            let c = encode("fp", "siteId", &p);
            c.contains('+').then(|| (p, c.replace('+', " ")))
        });
        let (p, mangled) = found.unwrap();
        assert_eq!(decode(&mangled, "fp", "siteId", false).unwrap(), p);
    }
}
