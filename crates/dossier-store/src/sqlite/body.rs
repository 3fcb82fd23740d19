//! How an incident's bodies (its raw JSON and its normalised form) are stored.
//!
//! A threat's JSON is a few kilobytes of repeated keys: compressed it is a quarter of that, and
//! bodies are most of what ingest writes. The compression happens before the writer lock is
//! taken, so it costs the writer nothing. A body is a BLOB holding the LZ4 block with its size
//! in front; rows written before bodies were compressed hold TEXT, and read as they are.

use rusqlite::types::ValueRef;

use crate::{Result, StoreError};

/// Larger than any body ingest stores (a whole tenant response is at most 64 MiB).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Compresses a body for storing.
pub(crate) fn pack(text: &[u8]) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(text)
}

/// A stored body as text, whichever form it was stored in.
///
/// # Errors
/// Fails when the stored value is neither text nor a compressed body of UTF-8 text.
pub fn unpack(v: ValueRef<'_>) -> Result<String> {
    match v {
        ValueRef::Text(t) => String::from_utf8(t.to_vec()).map_err(|e| damaged(&e)),
        ValueRef::Blob(b) => {
            let (size, block) = lz4_flex::block::uncompressed_size(b).map_err(|e| damaged(&e))?;
            // A damaged size must not ask for gigabytes: no tenant response is that large.
            if size > MAX_BODY {
                return Err(damaged(&format!("claims {size} bytes")));
            }
            let bytes = lz4_flex::block::decompress(block, size).map_err(|e| damaged(&e))?;
            String::from_utf8(bytes).map_err(|e| damaged(&e))
        }
        _ => Err(damaged(&"neither text nor a compressed body")),
    }
}

fn damaged(e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Database(format!("stored body: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_body_reads_back_exactly() {
        let json = r#"{"id":"1","threatInfo":{"sha1":"é","updatedAt":"2025-01-01T00:00:00Z"}}"#;
        let packed = pack(json.as_bytes());
        assert_eq!(unpack(ValueRef::Blob(&packed)).unwrap(), json);
    }

    #[test]
    fn bodies_stored_as_text_still_read() {
        assert_eq!(
            unpack(ValueRef::Text(b"{\"id\":\"1\"}")).unwrap(),
            "{\"id\":\"1\"}"
        );
    }

    #[test]
    fn a_damaged_body_is_an_error_not_a_panic() {
        let mut packed =
            pack(br#"{"id":"1","name":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#);
        packed.truncate(packed.len() / 2);
        assert!(unpack(ValueRef::Blob(&packed)).is_err());
        assert!(unpack(ValueRef::Blob(&[0xff, 0xff, 0xff, 0x7f, 1])).is_err());
        assert!(unpack(ValueRef::Integer(3)).is_err());
    }

    #[test]
    fn json_bodies_shrink() {
        let one = r#"{"agentRealtimeInfo":{"agentComputerName":"host","agentOsName":"Windows 11"},"threatInfo":{"classification":"Malware","confidenceLevel":"malicious"}}"#;
        let many = format!("[{}]", vec![one; 20].join(","));
        assert!(pack(many.as_bytes()).len() * 3 < many.len());
    }
}
