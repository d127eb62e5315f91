//! API errors as RFC 9457 problem+json with a stable `code`. Clients see what is theirs to fix;
//! the full error chain goes to the logs.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::ingest::FieldError;
use crate::store::StoreError;

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    /// Stable, documented error code (see README §Errors).
    pub code: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Per-item results of a batch that had nothing valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub results: Option<serde_json::Value>,
    /// `detail` again, for SDKs that read `message` (rudder-sdk-python fails on an error body
    /// without `code` and `message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("https://surety.dev/problems/{code}"),
            title,
            status: status.as_u16(),
            code,
            detail: detail.into(),
            errors: Vec::new(),
            results: None,
            message: None,
        }
    }

    /// Adds `message` for tracking SDKs.
    pub fn for_sdk(mut self) -> Self {
        self.message = Some(self.detail.clone());
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", "a valid bearer token is required")
    }

    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            "this token's role may not do this; an admin token is required",
        )
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", what)
    }

    pub fn storage(e: &StoreError) -> Self {
        tracing::error!(error = %e, "storage failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "Storage unavailable",
            "the ledger could not commit; nothing was acknowledged, retry later",
        )
    }
}

/// A body that is not acceptable JSON: a syntax error, or a key named twice in one object.
impl From<crate::ingest::json::JsonError> for Problem {
    fn from(e: crate::ingest::json::JsonError) -> Self {
        use crate::ingest::json::JsonError;
        match e {
            JsonError::DuplicateKey { key } => {
                let message = "appears twice in one object; send each key once";
                Problem::new(StatusCode::BAD_REQUEST, "duplicate_key", "Duplicate key", format!("{key}: {message}"))
                    .with_errors(vec![FieldError::new(key, "duplicate_key", message)])
            }
            JsonError::Syntax(e) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "Malformed JSON",
                format!("the body is not JSON: {e}"),
            ),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response()
    }
}
