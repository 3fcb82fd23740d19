//! Records that cannot be read: never dropped in silence, whatever their source.
//!
//! A record that does not map (no id, an id with surrounding whitespace, no timestamp, a
//! record over the size cap) becomes an event and shows in the connector's status, and it is
//! tried again when it next changes. Which versions were found unreadable is remembered in the
//! checkpoint ([`Checkpoint::unreadable`]) by the record's id and update time, as the producer
//! wrote them: the overlap and the sweeps read a record again and again, and a version already
//! reported is not reported twice, while a later version (the record changed) is mapped again
//! and, if it still cannot be read, reported again. One that maps leaves the list.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::mapping::{bound, lossy_surrogates, NAME_MAX};
use crate::outline::Outline;

/// Where a producer's record says its id and its update time, as JSON pointers
/// (`/threatInfo/updatedAt`), to name a record that cannot be mapped.
#[derive(Debug, Clone, Copy)]
pub struct RecordIdentity {
    pub id: &'static str,
    pub updated: &'static str,
}

/// One version of a record that could not be read, as the checkpoint remembers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableKey {
    /// The record's id as the producer wrote it (whitespace and all); for a record whose id
    /// cannot be found, a digest of its text.
    pub id: String,
    /// Its update time as the producer wrote it; empty when it has none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub updated: String,
}

/// A record that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub key: UnreadableKey,
    /// Whether `key.id` is the record's own id (not a digest of its text).
    pub has_id: bool,
    pub reason: String,
}

/// How many unreadable versions a checkpoint remembers; past it, the oldest are forgotten
/// (a version forgotten and read again is reported again, which loses nothing).
pub const MAX_REMEMBERED: usize = 1000;

impl Unreadable {
    /// Names a record that did not map for `reason`, by what `identity` finds in its text
    /// (read lossily; strings and numbers taken as written, cut to [`NAME_MAX`]).
    #[must_use]
    pub fn of(raw: &str, identity: &RecordIdentity, reason: String) -> Self {
        let value: Option<serde_json::Value> = serde_json::from_str(&lossy_surrogates(raw)).ok();
        let at = |pointer: &str| {
            let mut text = match value.as_ref()?.pointer(pointer)? {
                serde_json::Value::String(s) => s.clone(),
                n @ serde_json::Value::Number(_) => n.to_string(),
                _ => return None,
            };
            bound(&mut text, NAME_MAX);
            Some(text)
        };
        let id = at(identity.id);
        let updated = at(identity.updated).unwrap_or_default();
        let has_id = id.as_deref().is_some_and(|id| !id.is_empty());
        let id = id.filter(|id| !id.is_empty()).unwrap_or_else(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            raw.hash(&mut h);
            format!("text:{:016x}", h.finish())
        });
        Self {
            key: UnreadableKey { id, updated },
            has_id,
            reason,
        }
    }

    /// Names a record by its id and update time alone (one too large to be read whole).
    #[must_use]
    pub fn named(id: Option<String>, updated: Option<String>, reason: String) -> Self {
        let has_id = id.as_deref().is_some_and(|id| !id.is_empty());
        let mut id = id.filter(|id| !id.is_empty()).unwrap_or_else(|| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (&updated, &reason).hash(&mut h);
            format!("unnamed:{:016x}", h.finish())
        });
        bound(&mut id, NAME_MAX);
        let mut updated = updated.unwrap_or_default();
        bound(&mut updated, NAME_MAX);
        Self {
            key: UnreadableKey { id, updated },
            has_id,
            reason,
        }
    }
}

impl Unreadable {
    /// Names the one record of a response over the size cap (`limit`), from the response's
    /// outline, where the page holds its records at `records` (`/data`): skipped and reported
    /// like a record that does not map, so that it never stops the walk. `None` unless the
    /// response was scanned whole and held exactly one record with an id: a source then
    /// cannot tell what it would skip, and the response stays a failure.
    #[must_use]
    pub fn over_the_cap(
        outline: &Outline,
        records: &str,
        identity: &RecordIdentity,
        limit: u64,
    ) -> Option<Self> {
        let first = format!("{records}/0");
        let second = format!("{records}/1");
        if !outline.complete || !outline.holds(&first) || outline.holds(&second) {
            return None;
        }
        let at = |pointer: &str| outline.get(&format!("{first}{pointer}")).map(str::to_owned);
        let id = at(identity.id).filter(|id| !id.is_empty())?;
        Some(Self::named(
            Some(id),
            at(identity.updated),
            too_large_reason(outline.bytes, limit),
        ))
    }
}

/// Why a record over the size cap was skipped, in an operator's words.
#[must_use]
pub fn too_large_reason(bytes: u64, limit: u64) -> String {
    #[expect(
        clippy::cast_precision_loss,
        reason = "sizes shown to a tenth of a MiB"
    )]
    let mib = |n: u64| n as f64 / f64::from(1u32 << 20);
    format!(
        "it is larger than the size cap on its own (a response of {:.1} MiB, the cap {:.1} MiB); \
         it is read again when it next changes",
        mib(bytes),
        mib(limit)
    )
}

impl Checkpoint {
    /// Remembers an unreadable version and returns whether it is news: `false` when this very
    /// version (id and update time) was reported already. A record's earlier version is
    /// replaced by the later one.
    pub fn note_unreadable(&mut self, key: &UnreadableKey) -> bool {
        if self.unreadable.contains(key) {
            return false;
        }
        self.unreadable.retain(|k| k.id != key.id);
        if self.unreadable.len() >= MAX_REMEMBERED {
            self.unreadable.remove(0);
        }
        self.unreadable.push(key.clone());
        true
    }

    /// A record that was read: it is no longer unreadable, nor is the version of it that
    /// was refused for whitespace around its id (the tenant mended the id).
    pub fn note_read(&mut self, id: &str) {
        if !self.unreadable.is_empty() {
            self.unreadable.retain(|k| k.id.trim() != id);
        }
    }

    /// What the connector's status says while records cannot be read (`2 threats could not be
    /// read; see events`), calling a record `record_name`; `None` when all were read.
    #[must_use]
    pub fn unreadable_reason(&self, record_name: &str) -> Option<String> {
        match self.unreadable.len() {
            0 => None,
            1 => Some(format!("1 {record_name} could not be read; see events")),
            n => Some(format!("{n} {record_name}s could not be read; see events")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::PollPolicy;

    const S1: RecordIdentity = RecordIdentity {
        id: "/id",
        updated: "/threatInfo/updatedAt",
    };

    fn checkpoint() -> Checkpoint {
        Checkpoint::initial(chrono::Utc::now(), &PollPolicy::default())
    }

    #[test]
    fn a_record_is_named_by_its_id_and_update_time_as_written() {
        let u = Unreadable::of(
            r#"{"id":" 42 ","threatInfo":{"updatedAt":"2024-01-02T03:04:05Z","x":"\udc00"}}"#,
            &S1,
            "bad".into(),
        );
        assert_eq!(u.key.id, " 42 ");
        assert_eq!(u.key.updated, "2024-01-02T03:04:05Z");
        assert!(u.has_id);
        let n = Unreadable::of(r#"{"id":7}"#, &S1, "bad".into());
        assert_eq!((n.key.id.as_str(), n.key.updated.as_str()), ("7", ""));
    }

    #[test]
    fn a_page_of_one_record_over_the_cap_names_it_from_its_outline() {
        let one = br#"{"data":[{"id":"9","threatInfo":{"updatedAt":"2025-01-01T00:00:00Z"}}],"pagination":{"nextCursor":"c"}}"#;
        let u = Unreadable::over_the_cap(&Outline::of(one), "/data", &S1, 1 << 20);
        let u = u.unwrap_or_else(|| Unreadable::named(None, None, String::new()));
        assert_eq!(
            (u.key.id.as_str(), u.key.updated.as_str(), u.has_id),
            ("9", "2025-01-01T00:00:00Z", true)
        );
        assert!(
            u.reason.contains("larger than the size cap"),
            "{}",
            u.reason
        );
        for (body, why) in [
            (&br#"{"data":[{"id":"9"},{"id":"10"}]}"#[..], "two records"),
            (br#"{"data":[{"id":""}]}"#, "no id"),
            (br#"{"data":[]}"#, "no record"),
            (br#"{"data":[{"id":"9"}"#, "cut short"),
        ] {
            assert_eq!(
                Unreadable::over_the_cap(&Outline::of(body), "/data", &S1, 1),
                None,
                "{why}"
            );
        }
    }

    #[test]
    fn a_record_without_an_id_is_named_by_its_text() {
        let a = Unreadable::of("{not json", &S1, "bad".into());
        let b = Unreadable::of("{not json either", &S1, "bad".into());
        assert!(!a.has_id);
        assert!(a.key.id.starts_with("text:"));
        assert_ne!(a.key, b.key);
        assert_eq!(a.key, Unreadable::of("{not json", &S1, "bad".into()).key);
    }

    #[test]
    fn a_version_is_reported_once_and_a_later_one_again() {
        let mut cp = checkpoint();
        let v1 = UnreadableKey {
            id: "a".into(),
            updated: "1".into(),
        };
        let v2 = UnreadableKey {
            id: "a".into(),
            updated: "2".into(),
        };
        let other = UnreadableKey {
            id: "b".into(),
            updated: "1".into(),
        };
        assert!(cp.note_unreadable(&v1));
        assert!(!cp.note_unreadable(&v1), "the same version is not news");
        assert!(cp.note_unreadable(&v2), "a later version is");
        assert!(cp.note_unreadable(&other));
        assert_eq!(cp.unreadable, [v2, other.clone()]);
        assert_eq!(
            cp.unreadable_reason("threat").as_deref(),
            Some("2 threats could not be read; see events")
        );
        cp.note_read("a");
        assert!(cp.note_unreadable(&UnreadableKey {
            id: " c ".into(),
            updated: "1".into(),
        }));
        cp.note_read("c");
        assert_eq!(
            cp.unreadable_reason("alert").as_deref(),
            Some("1 alert could not be read; see events")
        );
        cp.note_read("b");
        assert_eq!(cp.unreadable_reason("threat"), None);
    }

    #[test]
    fn the_list_is_bounded_and_survives_the_checkpoint_json() {
        let mut cp = checkpoint();
        for n in 0..=MAX_REMEMBERED {
            cp.note_unreadable(&UnreadableKey {
                id: n.to_string(),
                updated: String::new(),
            });
        }
        assert_eq!(cp.unreadable.len(), MAX_REMEMBERED);
        assert_eq!(cp.unreadable[0].id, "1", "the oldest is forgotten");
        let json = serde_json::to_string(&cp).unwrap_or_default();
        let back: Checkpoint = serde_json::from_str(&json).unwrap_or_else(|_| checkpoint());
        assert_eq!(back, cp);
        let empty = checkpoint();
        let json = serde_json::to_string(&empty).unwrap_or_default();
        assert!(!json.contains("unreadable"), "{json}");
    }
}
