//! One error type for the API: kinds map to statuses and a `{"error","message"}` body.
//! Internal details are logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dossier_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid API key is required: send Authorization: Bearer <key>")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Not found, with the reason in words.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this route does not take that method")]
    MethodNotAllowed,
    #[error("the request body is over the {0} bytes a request may have")]
    PayloadTooLarge(usize),
    /// A producer's tenant, asked on the caller's behalf, could not be read.
    #[error("{0}")]
    BadGateway(String),
    /// The server cannot take this now (too many waiters, a database that cannot be
    /// written); the client may ask again later.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub(crate) fn kind(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            ApiError::Unauthenticated => ("unauthenticated", StatusCode::UNAUTHORIZED),
            ApiError::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::NotFound(_) | ApiError::Missing(_) => ("not_found", StatusCode::NOT_FOUND),
            ApiError::Conflict(_) => ("conflict", StatusCode::CONFLICT),
            ApiError::MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            ApiError::PayloadTooLarge(_) => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::BadGateway(_) => ("bad_gateway", StatusCode::BAD_GATEWAY),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// Maps a store error; `what` names the resource for a not-found.
    pub fn from_store(e: StoreError, what: &'static str) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound(what),
            StoreError::Invalid(m) => ApiError::BadRequest(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Forbidden(m) => ApiError::Forbidden(m),
            // A full disk or a read-only database: the client may ask again once it is mended.
            StoreError::Unavailable(m) => ApiError::Unavailable(m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (kind, status) = self.kind();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let body = serde_json::json!({ "error": kind, "message": self.to_string() });
        let mut res = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750: a 401 names the scheme the client should use.
            res.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
