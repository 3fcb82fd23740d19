//! The response envelopes of the Management API v2.1 (SENTINELONE.md §1.3, §1.4).
//!
//! A list page is `{"data":[…],"pagination":{"nextCursor":…,"totalItems":…}}`; single-object
//! endpoints answer `{"data":{…}}`; errors are `{"errors":[{"code","detail","title"}]}`. Threats
//! are kept as raw JSON here and mapped one by one later, so one odd threat cannot fail a page.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::lenient::{Obj, Seq, Str, U64};

/// One page of threats, each still raw JSON text.
#[derive(Debug, Clone)]
pub struct Page {
    pub threats: Vec<Box<RawValue>>,
    /// The cursor of the next page; `None` on the last page (null, `"null"`, `""` or absent).
    pub next_cursor: Option<String>,
    pub total_items: Option<u64>,
}

/// Why a response body is not a usable page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON.
    #[error("response is not valid JSON: {0}")]
    Json(String),
    /// JSON that stops before its end: the answer was cut short on its way.
    #[error("response was cut off before its end: {0}")]
    Truncated(String),
    /// JSON of the wrong shape; names the field and what was expected.
    #[error("unexpected response shape: {0}")]
    Shape(String),
    /// An error envelope (`errors` and no `data`) where a page was expected.
    #[error("the API returned an error instead of data: {0}")]
    Api(ApiErrorBody),
}

/// The body of an API error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorBody {
    /// Never empty when returned by [`parse_error`].
    pub errors: Vec<ApiErrorEntry>,
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiErrorEntry {
    /// Seven digits: HTTP status × 10⁴ + sub-code (`4010010`).
    pub code: Option<u64>,
    pub title: Option<String>,
    pub detail: Option<String>,
}

impl ApiErrorBody {
    /// Returns the code of the first error.
    #[must_use]
    pub fn code(&self) -> Option<u64> {
        self.errors.iter().find_map(|e| e.code)
    }

    /// Returns the title of the first error that has one.
    #[must_use]
    pub fn title(&self) -> Option<&str> {
        self.errors.iter().find_map(|e| e.title.as_deref())
    }

    /// Returns the detail of the first error that has one.
    #[must_use]
    pub fn detail(&self) -> Option<&str> {
        self.errors.iter().find_map(|e| e.detail.as_deref())
    }
}

impl std::fmt::Display for ApiErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code(), self.title()) {
            (Some(c), Some(t)) => write!(f, "{c} {t}"),
            (Some(c), None) => write!(f, "{c}"),
            (None, Some(t)) => f.write_str(t),
            (None, None) => f.write_str("no details"),
        }?;
        if let Some(d) = self.detail() {
            write!(f, " ({d})")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    pagination: Option<&'a RawValue>,
    #[serde(default)]
    errors: Seq<Obj<RawError>>,
}

/// A list page: its threats are split out as they are read, not in a second pass over `data`.
#[derive(Deserialize)]
struct ListEnvelope<'a> {
    #[serde(default)]
    data: Option<Vec<Box<RawValue>>>,
    #[serde(borrow, default)]
    pagination: Option<&'a RawValue>,
    #[serde(default, rename = "errors")]
    _errors: serde::de::IgnoredAny,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct RawError {
    code: U64,
    title: Str,
    detail: Str,
}

#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Pagination<'a> {
    #[serde(borrow)]
    next_cursor: Option<&'a RawValue>,
    total_items: U64,
}

/// Parses a list (or single-object) response into a [`Page`].
///
/// # Errors
/// [`EnvelopeError`] for invalid or truncated JSON, a body that is not an object, `data` that
/// is neither an array nor an object, a malformed `pagination`, or an error envelope.
pub fn parse_page(body: &[u8]) -> Result<Page, EnvelopeError> {
    let text = std::str::from_utf8(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
    // Derived structs also accept arrays (positionally); a page is an object, nothing else.
    match text.trim_start().as_bytes().first() {
        Some(b'{') => {}
        None => return Err(EnvelopeError::Json("empty body".into())),
        Some(_) => return Err(EnvelopeError::Shape("expected a JSON object".into())),
    }
    // A list page (`data` an array) is read in one pass; anything else, including every
    // malformed body, takes the general path below, which names what is wrong.
    if let Ok(ListEnvelope {
        data: Some(threats),
        pagination,
        ..
    }) = serde_json::from_str(text)
    {
        let (next_cursor, total_items) = pagination_of(pagination)?;
        return Ok(Page {
            threats,
            next_cursor,
            total_items,
        });
    }
    parse_general(text)
}

/// Any page, in two passes: the envelope, then `data`.
fn parse_general(text: &str) -> Result<Page, EnvelopeError> {
    let env: Envelope<'_> = match serde_json::from_str(text) {
        Ok(env) => env,
        Err(e) if e.is_data() => {
            return Err(EnvelopeError::Shape(format!(
                "expected an object with `data`: {e}"
            )))
        }
        Err(e) if e.is_eof() => return Err(EnvelopeError::Truncated(e.to_string())),
        Err(e) => return Err(EnvelopeError::Json(e.to_string())),
    };
    let data = env
        .data
        .map(RawValue::get)
        .map(str::trim)
        .filter(|d| *d != "null");
    let Some(data) = data else {
        let errors = error_entries(env.errors);
        return Err(if errors.is_empty() {
            EnvelopeError::Shape("missing `data`".into())
        } else {
            EnvelopeError::Api(ApiErrorBody { errors })
        });
    };
    let threats = match data.as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<Box<RawValue>>>(data)
            .map_err(|e| EnvelopeError::Json(e.to_string()))?,
        Some(b'{') => vec![RawValue::from_string(data.to_owned())
            .map_err(|e| EnvelopeError::Json(e.to_string()))?],
        _ => {
            return Err(EnvelopeError::Shape(
                "`data` must be an array or an object".into(),
            ))
        }
    };
    let (next_cursor, total_items) = pagination_of(env.pagination)?;
    Ok(Page {
        threats,
        next_cursor,
        total_items,
    })
}

/// The next cursor and total of a page's `pagination`.
fn pagination_of(
    pagination: Option<&RawValue>,
) -> Result<(Option<String>, Option<u64>), EnvelopeError> {
    match pagination.map(RawValue::get) {
        None | Some("null") => Ok((None, None)),
        Some(p) if !p.starts_with('{') => Err(EnvelopeError::Shape(
            "`pagination` must be an object".into(),
        )),
        Some(p) => {
            let p: Pagination<'_> = serde_json::from_str(p)
                .map_err(|_| EnvelopeError::Shape("`pagination` must be an object".into()))?;
            Ok((cursor(p.next_cursor)?, p.total_items.0))
        }
    }
}

/// A cursor is a non-empty string other than `"null"` (a fixture sends the string, §1.3).
fn cursor(raw: Option<&RawValue>) -> Result<Option<String>, EnvelopeError> {
    let Some(raw) = raw.map(RawValue::get) else {
        return Ok(None);
    };
    if raw == "null" {
        return Ok(None);
    }
    let s: String = serde_json::from_str(raw).map_err(|_| {
        EnvelopeError::Shape("`pagination.nextCursor` must be a string or null".into())
    })?;
    let s = s.trim();
    Ok((!s.is_empty() && s != "null").then(|| s.to_owned()))
}

/// Parses an error body (`{"errors":[{"code","detail","title"}]}`). Returns `None` when the
/// body is not one, or when no entry carries a code, title or detail.
#[must_use]
pub fn parse_error(body: &[u8]) -> Option<ApiErrorBody> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Seq<Obj<RawError>>,
    }
    let parsed: Obj<Errors> = serde_json::from_slice(body).ok()?;
    let errors = error_entries(parsed.0?.errors);
    (!errors.is_empty()).then_some(ApiErrorBody { errors })
}

fn error_entries(raw: Seq<Obj<RawError>>) -> Vec<ApiErrorEntry> {
    raw.0
        .into_iter()
        .filter_map(|e| e.0)
        .map(|e| ApiErrorEntry {
            code: e.code.0,
            title: e.title.into_inner(),
            detail: e.detail.into_inner(),
        })
        .filter(|e| e.code.is_some() || e.title.is_some() || e.detail.is_some())
        .collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{parse_general, parse_page, Page};

    fn view(page: &Page) -> (Vec<&str>, Option<&str>, Option<u64>) {
        (
            page.threats.iter().map(|t| t.get()).collect(),
            page.next_cursor.as_deref(),
            page.total_items,
        )
    }

    fn part() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            r#""data":[{"id":"1"},{"id":"2","x":[1,{"a":"\u00e9"}]}]"#,
            r#""data":[]"#,
            r#""data":[1,"two",null]"#,
            r#""data":{"id":"3"}"#,
            r#""data":null"#,
            r#""data":"null""#,
            r#""data":7"#,
            r#""pagination":{"nextCursor":"abc","totalItems":2}"#,
            r#""pagination":{"nextCursor":null,"totalItems":"2"}"#,
            r#""pagination":{"nextCursor":"null"}"#,
            r#""pagination":null"#,
            r#""pagination":[]"#,
            r#""errors":[{"code":4010010,"title":"Authentication Failed"}]"#,
            r#""errors":"odd""#,
            r#""other":{"data":[]}"#,
        ])
    }

    proptest! {
        /// The one-pass reading of a list page gives exactly what the general path gives, and
        /// fails exactly when it fails (with its message).
        #[test]
        fn the_list_fast_path_agrees_with_the_general_path(
            parts in prop::collection::vec(part(), 0..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut body = format!("{{{}}}", parts.join(","));
            if truncate {
                body.truncate(cut.index(body.len()));
            }
            let text = body.as_str();
            let general = if text.trim_start().starts_with('{') {
                parse_general(text)
            } else {
                parse_page(body.as_bytes())
            };
            match (parse_page(body.as_bytes()), general) {
                (Ok(a), Ok(b)) => prop_assert_eq!(view(&a), view(&b)),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                (a, b) => prop_assert!(false, "{body}: {a:?} vs {b:?}"),
            }
        }
    }
}
