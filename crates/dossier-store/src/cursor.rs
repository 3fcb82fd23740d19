//! Opaque keyset cursors: base64 of the sort value and id of the last row of a page, bound to
//! the sort they were made for. Every backend makes and reads them alike, so a cursor means
//! the same whatever the store.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::{Result, StoreError};

/// A position in a sorted list: the sort column's value and the row id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortValue {
    Int(i64),
    Text(String),
}

/// Which side of its row a cursor's page lies on: after it (the next page) or before it (the
/// previous page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    After,
    Before,
}

/// A cursor to the rows on `side` of this one.
pub fn encode(sort: &str, value: &SortValue, id: &str, side: Side) -> String {
    let v = match value {
        SortValue::Int(i) => format!("i{i}"),
        SortValue::Text(s) => format!("t{s}"),
    };
    // A sort name never starts with `<`, so cursors made before pages could go back still read.
    let mark = if side == Side::Before { "<" } else { "" };
    URL_SAFE_NO_PAD.encode(format!("{mark}{sort}\u{1f}{v}\u{1f}{id}"))
}

pub fn decode(cursor: &str, sort: &str) -> Result<(SortValue, String, Side)> {
    let bad = || StoreError::Invalid("cursor: not a cursor this list made".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    // The sort name and the id never hold the separator; the value in between may (it can be
    // a threat or device name from a tenant).
    let Some((s, rest)) = text.split_once('\u{1f}') else {
        return Err(bad());
    };
    let (s, side) = match s.strip_prefix('<') {
        Some(s) => (s, Side::Before),
        None => (s, Side::After),
    };
    let Some((v, id)) = rest.rsplit_once('\u{1f}') else {
        return Err(bad());
    };
    if s != sort {
        return Err(StoreError::Invalid(
            "cursor: it was made for another sort order; start again without a cursor".into(),
        ));
    }
    let value = if let Some(i) = v.strip_prefix('i') {
        SortValue::Int(i.parse().map_err(|_| bad())?)
    } else if let Some(t) = v.strip_prefix('t') {
        SortValue::Text(t.to_owned())
    } else {
        return Err(bad());
    };
    Ok((value, id.to_owned(), side))
}

/// A position among a story's incidents: the story, and the story order of the last incident
/// of a page (its creation time, connector id and the vendor's id). As JSON inside the base64,
/// since a vendor's id may hold any character.
pub fn encode_incident(story_id: &str, created: i64, connector: &str, external: &str) -> String {
    let text = serde_json::json!(["incidents", story_id, created, connector, external]).to_string();
    URL_SAFE_NO_PAD.encode(text)
}

/// Reads a cursor of [`encode_incident`], refusing one made for another story's incidents.
pub fn decode_incident(cursor: &str, story_id: &str) -> Result<(i64, String, String)> {
    let bad = || StoreError::Invalid("cursor: not a cursor of a story's incidents".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let (kind, story, created, connector, external): (String, String, i64, String, String) =
        serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if kind != "incidents" {
        return Err(bad());
    }
    if story != story_id {
        return Err(StoreError::Invalid(
            "cursor: it was made for another story's incidents; start again without a cursor"
                .into(),
        ));
    }
    Ok((created, connector, external))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_incident_cursor_round_trips_and_belongs_to_its_story() {
        let c = encode_incident("s1", 42, "c\u{1f}1", "x\"y");
        assert_eq!(
            decode_incident(&c, "s1").unwrap(),
            (42, "c\u{1f}1".into(), "x\"y".into())
        );
        assert!(decode_incident(&c, "s2").is_err());
        let list = encode("-updated_at", &SortValue::Int(42), "abc", Side::After);
        assert!(decode_incident(&list, "s1").is_err());
        assert!(decode_incident("garbage!", "s1").is_err());
    }

    #[test]
    fn round_trips_and_refuses_other_sorts() {
        let c = encode("-updated_at", &SortValue::Int(42), "abc", Side::After);
        assert_eq!(
            decode(&c, "-updated_at").unwrap(),
            (SortValue::Int(42), "abc".into(), Side::After)
        );
        assert!(decode(&c, "updated_at").is_err());
        assert!(decode("garbage!", "updated_at").is_err());
        let c = encode(
            "indication",
            &SortValue::Text("a\u{1f}b\u{1f}".into()),
            "x",
            Side::After,
        );
        assert_eq!(
            decode(&c, "indication").unwrap(),
            (
                SortValue::Text("a\u{1f}b\u{1f}".into()),
                "x".into(),
                Side::After
            )
        );
        let back = encode("-criticality", &SortValue::Int(7), "y", Side::Before);
        assert_eq!(
            decode(&back, "-criticality").unwrap(),
            (SortValue::Int(7), "y".into(), Side::Before)
        );
        assert!(decode(&back, "criticality").is_err());
    }
}
