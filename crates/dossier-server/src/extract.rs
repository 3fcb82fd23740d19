//! Request extractors whose rejections keep the API's error shape: a malformed query or body
//! is a `400 {"error":"bad_request","message":…}`, never a plain-text 422.

use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) if r.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge(crate::MAX_BODY))
            }
            Err(r) => Err(ApiError::BadRequest(format!("body: {}", r.body_text()))),
        }
    }
}

/// Query parameters. Every parameter the type does not name is refused, by name: a mistyped
/// filter must never widen a list (or a bulk action by filter) to everything. A list parameter
/// ([`QueryParams::LISTS`]) may repeat or hold commas, which mean the same (`status=a&status=b`
/// is `status=a,b`); any other parameter given twice is refused.
pub struct ApiQuery<T>(pub T);

/// What a query's parameters are.
pub trait QueryParams: DeserializeOwned {
    /// The parameters that hold a comma-separated list.
    const LISTS: &'static [&'static str] = &[];
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: QueryParams,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Reads query parameters by the rules of [`ApiQuery`], from a raw query string.
///
/// # Errors
/// Bad request naming the parameter that is unknown, repeated or malformed.
pub fn parse_query<T: QueryParams>(raw: &str) -> Result<T, ApiError> {
    let merged = merge_lists(raw, T::LISTS)?;
    let uri: axum::http::Uri = format!("/?{merged}")
        .parse()
        .map_err(|_| ApiError::BadRequest("query: not a valid query string".into()))?;
    match Query::<T>::try_from_uri(&uri) {
        Ok(Query(v)) => Ok(v),
        Err(r) => Err(ApiError::BadRequest(format!("query: {}", r.body_text()))),
    }
}

/// A query with each list parameter's repeats joined by commas, re-encoded; a repeat of any
/// other parameter is refused.
fn merge_lists(raw: &str, lists: &[&str]) -> Result<String, ApiError> {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        match merged.iter_mut().find(|(key, _)| *key == k) {
            None => merged.push((k.into_owned(), v.into_owned())),
            Some((_, joined)) if lists.contains(&k.as_ref()) => {
                if !joined.is_empty() && !v.is_empty() {
                    joined.push(',');
                }
                joined.push_str(&v);
            }
            Some(_) => {
                return Err(ApiError::BadRequest(format!(
                    "{k}: given more than once; only a list parameter may repeat{}",
                    if lists.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", lists.join(", "))
                    }
                )))
            }
        }
    }
    Ok(url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&merged)
        .finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_list_parameter_repeated_is_the_same_as_with_commas() {
        let lists = &["status", "severity"];
        assert_eq!(
            merge_lists("status=open&q=a%26b&status=closed", lists).unwrap(),
            "status=open%2Cclosed&q=a%26b"
        );
        assert_eq!(
            merge_lists("status=open,closed&q=a%26b", lists).unwrap(),
            "status=open%2Cclosed&q=a%26b"
        );
        assert_eq!(
            merge_lists("status=&status=open", lists).unwrap(),
            "status=open"
        );
    }

    #[test]
    fn any_other_parameter_repeated_is_refused_by_name() {
        let e = merge_lists("limit=1&limit=2", &["status"]).unwrap_err();
        assert!(e.to_string().contains("limit: given more than once"), "{e}");
    }
}
