//! The outline of a response too large to be read whole: its short values (ids, update times,
//! the next page's cursor), found by scanning the body as it streams past without keeping it.
//!
//! A page of one record over the size cap cannot be read, but it must not stop the walk
//! either: the source names the record from the outline (an unreadable record, reported and
//! skipped) and goes on with the cursor the outline holds. The scan keeps only scalars near
//! the top of the document ([`MAX_DEPTH`] levels, each at most [`MAX_VALUE`] bytes, at most
//! [`MAX_VALUES`] of them), so a body of any size costs a few kilobytes of memory.

use std::collections::BTreeMap;

/// How deep a value may sit and still be kept (`/data/0/threatInfo/updatedAt` is 4).
pub const MAX_DEPTH: usize = 4;
/// The longest value kept, in bytes as sent; a longer one is left out (a cursor is shorter).
pub const MAX_VALUE: usize = 4096;
/// How many values are kept at most; later ones are left out.
pub const MAX_VALUES: usize = 4096;
/// How deep the scan follows the nesting itself; deeper brackets are only counted.
const MAX_STACK: usize = 64;

/// The short values of a JSON document, by JSON pointer, as far as it was scanned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outline {
    values: BTreeMap<String, String>,
    /// How many bytes were scanned.
    pub bytes: u64,
    /// Whether the document was scanned to its end (it closed its outermost bracket).
    pub complete: bool,
}

impl Outline {
    /// The value at `pointer` (`/pagination/nextCursor`): a string decoded, a number or a
    /// literal as written; `None` when it was not there, or too long or too deep to be kept.
    #[must_use]
    pub fn get(&self, pointer: &str) -> Option<&str> {
        self.values.get(pointer).map(String::as_str)
    }

    /// Whether anything was kept at or under `pointer` (`/data/1`).
    #[must_use]
    pub fn holds(&self, pointer: &str) -> bool {
        let under = format!("{pointer}/");
        self.values.contains_key(pointer)
            || self
                .values
                .range(under.clone()..)
                .next()
                .is_some_and(|(k, _)| k.starts_with(&under))
    }

    /// Scans a whole document held in memory.
    #[must_use]
    pub fn of(body: &[u8]) -> Self {
        let mut s = Scanner::default();
        s.feed(body);
        s.finish()
    }
}

#[derive(Debug)]
enum Frame {
    Object { key: Option<String>, want_key: bool },
    Array { index: usize },
}

#[derive(Debug, Default)]
enum Lexing {
    #[default]
    Between,
    /// Inside a string: its raw bytes so far (quotes and escapes as sent) unless too long.
    Str {
        raw: Vec<u8>,
        long: bool,
        escape: bool,
    },
    /// Inside a number or a literal.
    Bare(Vec<u8>),
}

/// Scans a JSON document fed in chunks, keeping its short values near the top.
#[derive(Debug, Default)]
pub struct Scanner {
    stack: Vec<Frame>,
    /// Brackets open beyond [`MAX_STACK`], only counted.
    deeper: usize,
    lexing: Lexing,
    values: BTreeMap<String, String>,
    kept_bytes: usize,
    bytes: u64,
    started: bool,
    complete: bool,
    many: bool,
}

impl Scanner {
    /// Scans the next chunk of the document, up to its end or its second record.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        for &b in chunk {
            // Done: the document ended, or it holds more than one record.
            if self.complete || self.many {
                return;
            }
            self.byte(b);
        }
    }

    /// How many bytes were fed.
    #[must_use]
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether an array at the top of the document, or in a member of it (a page's records),
    /// has reached its second element: the page holds more than one record, and its outline
    /// would name none of them.
    #[must_use]
    pub fn many(&self) -> bool {
        self.many
    }

    /// The outline of what was fed.
    #[must_use]
    pub fn finish(mut self) -> Outline {
        if let Lexing::Bare(raw) = std::mem::take(&mut self.lexing) {
            self.scalar(&raw);
        }
        Outline {
            values: self.values,
            bytes: self.bytes,
            complete: self.complete,
        }
    }

    fn byte(&mut self, b: u8) {
        match &mut self.lexing {
            Lexing::Str { raw, long, escape } => {
                let end = !*escape && b == b'"';
                *escape = !*escape && b == b'\\';
                if end {
                    let (raw, long) = (std::mem::take(raw), *long);
                    self.lexing = Lexing::Between;
                    self.string(&raw, long);
                } else if !*long {
                    if raw.len() >= MAX_VALUE {
                        *long = true;
                        raw.clear();
                    } else {
                        raw.push(b);
                    }
                }
                return;
            }
            Lexing::Bare(raw) => {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.') {
                    if raw.len() < 64 {
                        raw.push(b);
                    }
                    return;
                }
                let raw = std::mem::take(raw);
                self.lexing = Lexing::Between;
                self.scalar(&raw);
            }
            Lexing::Between => {}
        }
        match b {
            b'{' | b'[' => {
                self.started = true;
                if self.stack.len() >= MAX_STACK {
                    self.deeper += 1;
                } else if b == b'{' {
                    self.stack.push(Frame::Object {
                        key: None,
                        want_key: true,
                    });
                } else {
                    self.stack.push(Frame::Array { index: 0 });
                }
            }
            b'}' | b']' => {
                if self.deeper > 0 {
                    self.deeper -= 1;
                } else {
                    self.stack.pop();
                    if self.stack.is_empty() && self.started {
                        self.complete = true;
                    }
                }
            }
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = self.stack.last_mut() {
                    *want_key = false;
                }
            }
            b',' => match self.stack.last_mut() {
                Some(Frame::Object { key, want_key }) => {
                    *key = None;
                    *want_key = true;
                }
                Some(Frame::Array { index }) => {
                    *index += 1;
                    // The document's records (an array at its top, or in a member of it).
                    if self.stack.len() <= 2 {
                        self.many = true;
                    }
                }
                None => {}
            },
            b'"' => {
                self.lexing = Lexing::Str {
                    raw: Vec::new(),
                    long: false,
                    escape: false,
                };
            }
            b if b.is_ascii_whitespace() => {}
            b => self.lexing = Lexing::Bare(vec![b]),
        }
    }

    /// A string ended: an object's key, or a value.
    fn string(&mut self, raw: &[u8], long: bool) {
        if self.deeper == 0 {
            if let Some(Frame::Object {
                key,
                want_key: want @ true,
            }) = self.stack.last_mut()
            {
                // A key too long to keep names no value anyone asks for.
                *key = Some(if long {
                    "\u{FFFD}".to_owned()
                } else {
                    decode(raw)
                });
                *want = false;
                return;
            }
        }
        if !long {
            self.keep(|| decode(raw));
        }
    }

    /// A number or a literal ended; `null` is no value.
    fn scalar(&mut self, raw: &[u8]) {
        if raw == b"null" {
            return;
        }
        let text = String::from_utf8_lossy(raw).into_owned();
        self.keep(|| text);
    }

    /// Keeps the value that just ended at the current place, if it is near enough the top and
    /// there is room.
    fn keep(&mut self, value: impl FnOnce() -> String) {
        if self.deeper > 0
            || self.stack.len() > MAX_DEPTH
            || self.values.len() >= MAX_VALUES
            || self.kept_bytes >= MAX_VALUES * 64
        {
            return;
        }
        let mut pointer = String::new();
        for frame in &self.stack {
            pointer.push('/');
            match frame {
                Frame::Object { key: Some(k), .. } => {
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                }
                Frame::Object { key: None, .. } => return,
                Frame::Array { index } => pointer.push_str(&index.to_string()),
            }
        }
        let value = value();
        self.kept_bytes += pointer.len() + value.len();
        self.values.insert(pointer, value);
    }
}

/// A JSON string's text as sent (without its quotes), decoded; a lone surrogate escape
/// becomes U+FFFD, anything else that does not decode is kept as sent.
fn decode(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let quoted = format!("\"{}\"", crate::mapping::lossy_surrogates(&text));
    serde_json::from_str(&quoted).unwrap_or_else(|_| text.into_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn short_values_near_the_top_are_kept_by_pointer() {
        let body = br#"{"data":[{"id":"42","threatInfo":{"updatedAt":"2025-01-02T03:04:05Z",
            "deep":{"er":"x"},"big":"LONG"},"n":-1.5e3,"t":true,"z":null,"a/b":"\u00e9\"q\ud800"}],
            "pagination":{"nextCursor":"abc","totalItems":7}}"#;
        let big = "y".repeat(MAX_VALUE + 10);
        let body = String::from_utf8_lossy(body).replace("LONG", &big);
        let o = Outline::of(body.as_bytes());
        assert!(o.complete);
        assert_eq!(o.get("/data/0/id"), Some("42"));
        assert_eq!(
            o.get("/data/0/threatInfo/updatedAt"),
            Some("2025-01-02T03:04:05Z")
        );
        assert_eq!(o.get("/data/0/threatInfo/deep/er"), None, "too deep");
        assert_eq!(o.get("/data/0/threatInfo/big"), None, "too long");
        assert_eq!(o.get("/data/0/n"), Some("-1.5e3"));
        assert_eq!(o.get("/data/0/t"), Some("true"));
        assert_eq!(o.get("/data/0/z"), None, "null is no value");
        assert_eq!(o.get("/data/0/a~1b"), Some("é\"q\u{FFFD}"));
        assert_eq!(o.get("/pagination/nextCursor"), Some("abc"));
        assert_eq!(o.get("/pagination/totalItems"), Some("7"));
        assert_eq!(o.bytes, body.len() as u64);
    }

    #[test]
    fn chunks_of_any_size_give_the_same_outline() {
        let body = br#"{"value":[{"id":"a\"b","lastUpdateDateTime":"2025-01-01T00:00:00Z","x":[1,[2,{"k":3}]]}],"@odata.nextLink":"https://h/x?$skip=1"}"#;
        let whole = Outline::of(body);
        assert_eq!(whole.get("/value/0/id"), Some("a\"b"));
        assert_eq!(whole.get("/@odata.nextLink"), Some("https://h/x?$skip=1"));
        for size in [1, 2, 3, 7, 64] {
            let mut s = Scanner::default();
            for chunk in body.chunks(size) {
                s.feed(chunk);
            }
            assert_eq!(s.finish(), whole, "chunks of {size}");
        }
    }

    #[test]
    fn a_page_of_many_records_is_told_at_its_second() {
        let mut s = Scanner::default();
        s.feed(br#"{"data":[{"id":"1","tags":["a","b"],"x":{"y":[1,2]}}"#);
        assert!(!s.many(), "arrays inside a record do not count");
        s.feed(br#",{"id":"2"}]}"#);
        assert!(s.many());
        let mut one = Scanner::default();
        one.feed(br#"{"resources":[{"id":"1"}],"meta":{"n":1}}"#);
        assert!(!one.many());
    }

    #[test]
    fn hostile_nesting_and_garbage_cost_nothing() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let o = Outline::of(deep.as_bytes());
        assert!(o.complete);
        let cut = Outline::of(br#"{"a":"1","b":{"c":"#);
        assert!(!cut.complete);
        assert_eq!(cut.get("/a"), Some("1"));
        let _ = Outline::of(b"}}]]\"\\\x00{,:,");
    }
}
