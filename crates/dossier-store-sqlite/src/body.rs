//! How an incident's bodies (its raw JSON, and for older rows its normalised form) are stored.
//!
//! New rows store the raw JSON alone: the normalised incident is the producer's mapping of it,
//! and is mapped again when read ([`stored_incident`]), which costs a reader microseconds and
//! saved ingest a serialisation and a compression per threat (and 11% of the database).
//!
//! A threat's JSON is a few kilobytes of the same keys and much the same values, and bodies are
//! most of what ingest writes. Each body is a BLOB: an LZ4 block with a four-byte header in
//! front, whose low 28 bits are the text's size and whose top four bits say what the block was
//! compressed against:
//!
//! - form 0, nothing: how bodies were first compressed;
//! - form 1, [`THREAT_DICTIONARY`], a few typical threats, so the keys and common values of a
//!   raw threat cost almost nothing;
//! - form 2, the row's raw JSON: the normalised form of older rows, which repeats the raw's
//!   names, hashes and paths.
//!
//! Compression happens before the writer lock is taken, so it costs the writer nothing. Rows
//! written before bodies were compressed hold TEXT, and read as they are.

use dossier_domain::{Incident, Producer};
use rusqlite::types::ValueRef;

use dossier_store::{Remap, Result, StoreError};

/// Larger than any body ingest stores (a whole tenant response is at most 64 MiB).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The dictionary of form 1. Stored bodies are decoded with it, so it must never change: a
/// better dictionary is a new form.
pub(crate) const THREAT_DICTIONARY: &[u8] = include_bytes!("threat-dictionary.json");

const SIZE_BITS: u32 = 28;
const SIZE_MASK: u32 = (1 << SIZE_BITS) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Plain = 0,
    ThreatDictionary = 1,
    AgainstRaw = 2,
}

impl Form {
    fn of(bits: u32) -> Option<Self> {
        [Self::Plain, Self::ThreatDictionary, Self::AgainstRaw]
            .into_iter()
            .find(|f| *f as u32 == bits)
    }
}

/// Compresses bodies one after another through one scratch buffer: each body then costs one
/// allocation of its compressed size, not a zeroed buffer of the worst case that is shrunk
/// (and copied) afterwards.
#[derive(Default)]
pub(crate) struct Packer {
    scratch: Vec<u8>,
}

impl Packer {
    fn packed(&mut self, form: Form, text: &[u8], dict: &[u8]) -> Result<Vec<u8>> {
        // No tenant response is that large, and a body that was could not be read back.
        let size = u32::try_from(text.len())
            .ok()
            .filter(|s| *s as usize <= MAX_BODY)
            .ok_or_else(|| {
                StoreError::Invalid(format!(
                    "a body of {} bytes is over the {MAX_BODY} a body may have",
                    text.len()
                ))
            })?;
        let worst = 4 + lz4_flex::block::get_maximum_output_size(text.len());
        if self.scratch.len() < worst {
            self.scratch.resize(worst, 0);
        }
        let (header, block) = self.scratch.split_at_mut(4);
        header.copy_from_slice(&(size | ((form as u32) << SIZE_BITS)).to_le_bytes());
        let len = lz4_flex::block::compress_into_with_dict(text, block, dict)
            .map_err(|e| StoreError::Invalid(format!("cannot compress a body: {e}")))?;
        Ok(self.scratch[..4 + len].to_vec())
    }

    /// Compresses a threat's raw JSON for storing.
    ///
    /// # Errors
    /// Fails for a body over 64 MiB.
    pub(crate) fn raw(&mut self, raw: &[u8]) -> Result<Vec<u8>> {
        self.packed(Form::ThreatDictionary, raw, THREAT_DICTIONARY)
    }
}

/// Compresses a threat's raw JSON for storing (see [`Packer::raw`]).
///
/// # Errors
/// Fails for a body over 64 MiB.
#[cfg(test)]
pub(crate) fn pack_raw(raw: &[u8]) -> Result<Vec<u8>> {
    Packer::default().raw(raw)
}

/// Compresses an incident's normalised form against its raw JSON, as rows were written before
/// the normalised form was mapped on reading (tests make such rows).
///
/// # Errors
/// Fails for a body over 64 MiB.
#[cfg(test)]
pub(crate) fn pack_normalised(normalised: &[u8], raw: &[u8]) -> Result<Vec<u8>> {
    Packer::default().packed(Form::AgainstRaw, normalised, raw)
}

/// A stored raw body as text, whichever form it was stored in.
///
/// # Errors
/// Fails when the stored value is neither text nor a compressed body of UTF-8 text, or needs
/// the raw body to be read (see [`unpack_bodies`]).
pub fn unpack(v: ValueRef<'_>) -> Result<String> {
    unpack_against(v, None)
}

/// What the normalised column holds when the normalised incident is not stored but mapped from
/// the raw JSON when read: every row written since the mapping is done on reading.
pub(crate) const DERIVED: &str = "";

/// A row's stored bodies as text: (normalised, raw). The raw body is read first, since the
/// normalised one may have been compressed against it. The normalised body is `None` for a row
/// that does not store it ([`DERIVED`]).
///
/// # Errors
/// As [`unpack`], for either body.
pub fn unpack_bodies(
    normalised: ValueRef<'_>,
    raw: ValueRef<'_>,
) -> Result<(Option<String>, String)> {
    let raw = unpack(raw)?;
    if normalised == ValueRef::Text(DERIVED.as_bytes()) {
        return Ok((None, raw));
    }
    Ok((Some(unpack_normalised(normalised, &raw)?), raw))
}

/// The normalised incident of a stored row: the stored one of a row written before the mapping
/// was done on reading, else the producer's mapping of the raw JSON (the same mapping ingest
/// did, so the same incident). `None` when neither reads. The incident's `raw` is left empty.
///
/// A stored normalised form predates the neutral vocabulary and the incident's context: its
/// neutral values (confidence, mitigation, the producer's verdict, the device's kind), its
/// context (users, processes, files, indicators) and its device's network status come from
/// mapping its raw JSON, so that every rule and the story's entities read them the same for
/// old rows and new.
///
/// The mapping is the incident's producer's, given by the binary ([`Remap`]): the store knows
/// no source.
pub(crate) fn stored_incident(
    remap: &Remap,
    producer: Producer,
    normalised: Option<&str>,
    raw: &str,
) -> Option<Incident> {
    let mapped = || remap(producer, raw);
    let Some(text) = normalised else {
        return mapped();
    };
    let mut inc: Incident = serde_json::from_str(text).ok()?;
    if let Some(m) = mapped() {
        inc.confidence = m.confidence;
        inc.mitigation = m.mitigation;
        inc.producer_verdict = m.producer_verdict;
        inc.severity = m.severity;
        inc.device.kind = m.device.kind;
        inc.device.network_status = m.device.network_status;
        inc.context = m.context;
    }
    Some(inc)
}

/// A stored normalised body as text, given the raw body of the same row.
fn unpack_normalised(v: ValueRef<'_>, raw: &str) -> Result<String> {
    unpack_against(v, Some(raw.as_bytes()))
}

fn unpack_against(v: ValueRef<'_>, raw: Option<&[u8]>) -> Result<String> {
    let b = match v {
        ValueRef::Text(t) => return String::from_utf8(t.to_vec()).map_err(|e| damaged(&e)),
        ValueRef::Blob(b) => b,
        _ => return Err(damaged(&"neither text nor a compressed body")),
    };
    let (header, block) = b
        .split_first_chunk::<4>()
        .ok_or_else(|| damaged(&"shorter than its header"))?;
    let header = u32::from_le_bytes(*header);
    let size = (header & SIZE_MASK) as usize;
    // A damaged size must not ask for gigabytes: no tenant response is that large.
    if size > MAX_BODY {
        return Err(damaged(&format!("claims {size} bytes")));
    }
    let bytes = match Form::of(header >> SIZE_BITS) {
        Some(Form::Plain) => lz4_flex::block::decompress(block, size),
        Some(Form::ThreatDictionary) => {
            lz4_flex::block::decompress_with_dict(block, size, THREAT_DICTIONARY)
        }
        Some(Form::AgainstRaw) => {
            let raw = raw.ok_or_else(|| damaged(&"compressed against a raw body not given"))?;
            lz4_flex::block::decompress_with_dict(block, size, raw)
        }
        None => return Err(damaged(&format!("unknown form {}", header >> SIZE_BITS))),
    }
    .map_err(|e| damaged(&e))?;
    String::from_utf8(bytes).map_err(|e| damaged(&e))
}

fn damaged(e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Database(format!("stored body: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const THREAT: &str = r#"{"agentRealtimeInfo":{"agentComputerName":"host","agentOsName":"Windows 11"},"id":"1","threatInfo":{"classification":"Malware","confidenceLevel":"malicious","sha1":"é","updatedAt":"2025-01-01T00:00:00Z"}}"#;

    #[test]
    fn a_packed_raw_body_reads_back_exactly() {
        let packed = pack_raw(THREAT.as_bytes()).unwrap();
        assert_eq!(packed[3] >> 4, Form::ThreatDictionary as u8);
        assert_eq!(unpack(ValueRef::Blob(&packed)).unwrap(), THREAT);
    }

    #[test]
    fn a_normalised_body_reads_back_with_its_raw_body_only() {
        let normalised = r#"{"external_id":"1","sha1":"é","classification":"Malware"}"#;
        let packed = pack_normalised(normalised.as_bytes(), THREAT.as_bytes()).unwrap();
        assert_eq!(
            unpack_normalised(ValueRef::Blob(&packed), THREAT).unwrap(),
            normalised
        );
        assert!(unpack(ValueRef::Blob(&packed)).is_err());
    }

    /// Bodies stored before the forms: the size alone in front of a plain block.
    #[test]
    fn bodies_of_earlier_releases_still_read() {
        let old = lz4_flex::block::compress_prepend_size(THREAT.as_bytes());
        assert_eq!(unpack(ValueRef::Blob(&old)).unwrap(), THREAT);
        assert_eq!(unpack_normalised(ValueRef::Blob(&old), "").unwrap(), THREAT);
        assert_eq!(
            unpack(ValueRef::Text(b"{\"id\":\"1\"}")).unwrap(),
            "{\"id\":\"1\"}"
        );
    }

    /// Every stored body of form 1 is decoded with this dictionary: a change to it would make
    /// them unreadable, or worse, read wrong.
    #[test]
    fn the_threat_dictionary_never_changes() {
        use sha2::{Digest, Sha256};
        assert_eq!(
            hex::encode(Sha256::digest(THREAT_DICTIONARY)),
            "142f3bda21c969f510e11b371bd8c3264deb527be309d66daa8325990fcd3d55"
        );
    }

    #[test]
    fn a_damaged_body_is_an_error_not_a_panic() {
        let long = r#"{"id":"1","name":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#;
        for mut packed in [
            pack_raw(long.as_bytes()).unwrap(),
            lz4_flex::block::compress_prepend_size(long.as_bytes()),
        ] {
            packed.truncate(packed.len() / 2);
            assert!(unpack(ValueRef::Blob(&packed)).is_err());
        }
        assert!(unpack(ValueRef::Blob(&[0xff, 0xff, 0xff, 0x7f, 1])).is_err());
        assert!(unpack(ValueRef::Blob(&[0, 0, 0, 0x30, 1])).is_err());
        assert!(unpack(ValueRef::Blob(&[1, 0])).is_err());
        assert!(unpack(ValueRef::Integer(3)).is_err());
    }

    #[test]
    fn threat_bodies_shrink_to_a_fraction() {
        let one = String::from_utf8(THREAT_DICTIONARY.to_vec()).unwrap();
        let first = one.lines().next().unwrap();
        // Another threat like the dictionary's: other ids and names, the same shape.
        let other = first.replace("tsunami", "kaiten").replace('1', "7");
        assert!(pack_raw(other.as_bytes()).unwrap().len() * 4 < other.len());
    }

    #[test]
    fn a_body_too_large_to_read_back_is_refused() {
        let huge = vec![b' '; MAX_BODY + 1];
        assert!(pack_raw(&huge).is_err());
        assert!(pack_normalised(&huge, b"").is_err());
    }

    proptest! {
        #[test]
        fn any_text_reads_back(text in ".{0,2000}", raw in ".{0,500}") {
            prop_assert_eq!(unpack(ValueRef::Blob(&pack_raw(text.as_bytes()).unwrap())).unwrap(), text.clone());
            let n = pack_normalised(text.as_bytes(), raw.as_bytes()).unwrap();
            prop_assert_eq!(unpack_normalised(ValueRef::Blob(&n), &raw).unwrap(), text);
        }

        /// One packer compresses a whole batch through its scratch buffer: what a larger body
        /// left in it must never leak into a smaller one's.
        #[test]
        fn bodies_packed_one_after_another_each_read_back(
            texts in proptest::collection::vec(".{0,3000}", 1..12),
        ) {
            let mut packer = Packer::default();
            let packed: Vec<Vec<u8>> = texts.iter().map(|t| packer.raw(t.as_bytes()).unwrap()).collect();
            for (text, blob) in texts.iter().zip(&packed) {
                prop_assert_eq!(&unpack(ValueRef::Blob(blob)).unwrap(), text);
            }
        }
    }
}
