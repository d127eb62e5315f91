//! API errors as RFC 9457 problem+json with a stable `code`. Clients see what is theirs to fix;
//! the full error chain goes to the logs.

use axum::http::{header, HeaderValue, StatusCode};
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

    /// `/readyz`: the ledger cannot commit now (`reason` says why).
    pub fn not_ready(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "Not ready", reason)
    }

    pub fn request_timeout(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "Request timeout", detail)
    }
}

/// A ledger failure: `503 storage_unavailable` whatever the cause (nothing was acknowledged, so
/// retrying is right), with the cause in the logs only. A ledger that answers but holds data it
/// cannot read is logged as such: it needs a person, not a retry.
impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::Corrupt(_) => tracing::error!(error = %e, "the ledger holds data it cannot read"),
            StoreError::Closed => tracing::warn!(error = %e, "storage failed: the store is shutting down"),
            StoreError::Database(_)
            | StoreError::Postgres(_)
            | StoreError::Open(_)
            | StoreError::Unavailable(_)
            | StoreError::Task(_) => tracing::error!(error = %e, "storage failed"),
        }
        Problem::new(
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
        let mut response = (status, [(header::CONTENT_TYPE, "application/problem+json")], body).into_response();
        if self.code == "unauthorized" {
            // RFC 9110 §11.6.1: a 401 names the scheme it wants (the dashboard swaps in Basic).
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"surety\""));
        }
        response
    }
}

/// Turns every error answer that is not yet problem+json — axum's own rejections (path, query,
/// JSON), the 405 of a known path, a layer's 413 — into one, keeping its status and headers
/// (`Allow`, `WWW-Authenticate`). The dashboard's HTML pages pass as they are.
pub async fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes().to_ascii_lowercase());
    let exempt = content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with(b"application/problem+json") || ct.starts_with(b"text/html"));
    if !(status.is_client_error() || status.is_server_error()) || exempt {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).trim().to_owned());
    let said = text.ok().filter(|t| !t.is_empty());
    let detail = |fallback: &str| said.clone().unwrap_or_else(|| fallback.to_owned());
    let problem = match status {
        StatusCode::BAD_REQUEST => {
            Problem::new(status, "bad_request", "Bad request", detail("the request could not be understood"))
        }
        StatusCode::NOT_FOUND => Problem::not_found(detail("no such endpoint")),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts.headers.get(header::ALLOW).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            Problem::new(status, "method_not_allowed", "Method not allowed", format!("this path accepts: {allow}"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(status, "payload_too_large", "Payload too large", detail("the body is too large"))
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Problem::new(status, "unsupported_media_type", "Unsupported media type", detail("send application/json"))
        }
        s if s.is_client_error() => {
            Problem::new(status, "bad_request", "Bad request", detail("the request was refused"))
        }
        _ => {
            tracing::error!(%status, detail = ?said, "an error answer without a problem body");
            Problem::new(status, "internal_error", "Internal error", "the server failed; retry later")
        }
    };
    let mut fixed = problem.into_response();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    *fixed.headers_mut() = std::mem::take(&mut parts.headers);
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever failed in the ledger, a client sees the same retryable answer, never the cause.
    #[test]
    fn every_store_error_is_503_storage_unavailable_without_its_cause() {
        for e in [
            StoreError::Unavailable("disk full at /var/lib/surety".into()),
            StoreError::Corrupt("bad state 'x'".into()),
            StoreError::Closed,
            StoreError::Open("schema 9".into()),
            StoreError::Task("panicked".into()),
            StoreError::Database(rusqlite::Error::InvalidQuery),
        ] {
            let cause = e.to_string();
            let p = Problem::from(e);
            assert_eq!((p.status, p.code), (503, "storage_unavailable"), "{cause}");
            assert!(!p.detail.contains("surety") && !p.detail.contains("schema"), "{}", p.detail);
        }
    }
}
