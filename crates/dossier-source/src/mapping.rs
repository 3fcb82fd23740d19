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

/// Parses a record's top-level fields named in `keys` into a JSON object, skipping every
/// other field without building it. A mapper that reads a record as a JSON tree reads only
/// what it maps: a record carries kilobytes the mapping never looks at, and building a tree of
/// them cost a CrowdStrike alert's mapping more than all the rest of it.
///
/// # Errors
/// When the text is not a JSON object.
pub fn parse_fields(
    text: &str,
    keys: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

    struct Fields<'k>(&'k [&'k str]);

    impl<'de> Visitor<'de> for Fields<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = serde_json::Map::new();
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if self.0.contains(&key.as_ref()) {
                    let value: serde_json::Value = map.next_value()?;
                    out.insert(key.into_owned(), value);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }

    impl<'de> DeserializeSeed<'de> for Fields<'_> {
        type Value = serde_json::Map<String, serde_json::Value>;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    let mut de = serde_json::Deserializer::from_str(text);
    let fields = Fields(keys).deserialize(&mut de)?;
    de.end()?;
    Ok(fields)
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

#[cfg(test)]
mod parse_tests {
    use super::parse_fields;

    #[test]
    fn only_the_named_fields_are_kept_and_the_rest_must_still_be_json() {
        let text = r#"{"a":1,"big":{"x":[1,2,{"y":"z"}]},"b":"two","a\u0062":3}"#;
        let fields = parse_fields(text, &["a", "b", "ab"]).unwrap_or_default();
        assert_eq!(
            serde_json::Value::Object(fields),
            serde_json::json!({"a": 1, "b": "two", "ab": 3})
        );
        assert!(parse_fields("[1]", &["a"]).is_err());
        assert!(parse_fields(r#"{"a":1} trailing"#, &["a"]).is_err());
        assert!(parse_fields(r#"{"a":1,"skipped":[}"#, &["a"]).is_err());
    }
}
