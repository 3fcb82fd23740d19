//! What every source's mapping of a record onto an [`Incident`] shares, whatever its vendor:
//! keeping the record's own text as the incident's raw JSON, and reading the values that mean
//! the same in every vendor's records (file hashes, MITRE ATT&CK technique ids).
//!
//! These belong with the domain's vocabulary; they live here because the domain is not the
//! sources' to change.

use dossier_domain::Incident;
use serde_json::value::RawValue;

/// Maps a record with `map` (everything of an incident but its raw JSON), then keeps the
/// record's own text as the incident's raw JSON rather than a copy of it: a page's records
/// are kilobytes each.
///
/// # Errors
/// `map`'s.
pub fn keep_raw<E>(
    raw: Box<RawValue>,
    map: impl FnOnce(&str) -> Result<Incident, E>,
) -> Result<Incident, E> {
    let mut incident = map(raw.get())?;
    incident.raw = String::from(Box::<str>::from(raw));
    Ok(incident)
}

/// Lowercase hex of exactly `len` characters, else `None` (empty, null, truncated,
/// `"string"`).
pub fn hex_hash(s: Option<&str>, len: usize) -> Option<String> {
    let s = s?.trim();
    (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Tells whether a text is a MITRE ATT&CK technique id, exactly: `T` + 4 digits, optionally
/// `.` + 3 digits (`T1055`, `T1055.012`).
pub fn is_technique_id(s: &str) -> bool {
    let b = s.as_bytes();
    let base = b.len() >= 5 && b[0] == b'T' && b[1..5].iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => base,
        9 => base && b[5] == b'.' && b[6..9].iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_lowercase_hex_of_their_length() {
        assert_eq!(hex_hash(Some(" ABCDEF12 "), 8).as_deref(), Some("abcdef12"));
        assert_eq!(hex_hash(Some("abcdef1"), 8), None);
        assert_eq!(hex_hash(Some("abcdefgh"), 8), None);
        assert_eq!(hex_hash(None, 8), None);
    }

    #[test]
    fn technique_ids_are_exact() {
        for good in ["T1055", "T1055.012"] {
            assert!(is_technique_id(good), "{good}");
        }
        for bad in [
            "T105",
            "T1055.",
            "T1055.12",
            "t1055",
            "TA0006",
            "T1055.012x",
        ] {
            assert!(!is_technique_id(bad), "{bad}");
        }
    }
}
