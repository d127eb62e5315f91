//! Graph API errors as the simulated Conversions API answers them
//! (developers.facebook.com/docs/graph-api/guides/error-handling).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// A Graph API error to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub is_transient: Option<bool>,
    pub kind: String,
    pub message: String,
    pub user_msg: Option<String>,
}

impl GraphError {
    /// The error Meta answers for `code`, with the HTTP status it comes with.
    pub fn for_code(code: i64, subcode: Option<i64>, is_transient: Option<bool>) -> Self {
        let (status, kind, message) = match code {
            1 => (500, "OAuthException", "An unknown error occurred"),
            2 => (503, "OAuthException", "An unexpected error has occurred. Please retry your request later."),
            4 => (400, "OAuthException", "(#4) Application request limit reached"),
            17 => (400, "OAuthException", "(#17) User request limit reached"),
            613 => (400, "OAuthException", "(#613) Calls within one hour have exceeded the rate limit"),
            190 => (401, "OAuthException", "Error validating access token"),
            10 => (403, "OAuthException", "(#10) Application does not have permission for this action"),
            200..=299 => (403, "OAuthException", "(#200) Permissions error"),
            368 => (
                400,
                "OAuthException",
                "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
            ),
            _ => (400, "OAuthException", "(#100) Invalid parameter"),
        };
        Self { status, code, subcode, is_transient, kind: kind.into(), message: message.into(), user_msg: None }
    }

    pub(super) fn body(&self, fbtrace_id: &str) -> Value {
        let mut e = Map::new();
        e.insert("message".into(), self.message.as_str().into());
        e.insert("type".into(), self.kind.as_str().into());
        e.insert("code".into(), self.code.into());
        if let Some(sub) = self.subcode {
            e.insert("error_subcode".into(), sub.into());
        }
        if let Some(t) = self.is_transient {
            e.insert("is_transient".into(), t.into());
        }
        if let Some(msg) = &self.user_msg {
            e.insert("error_user_title".into(), "Invalid event".into());
            e.insert("error_user_msg".into(), msg.as_str().into());
        }
        e.insert("fbtrace_id".into(), fbtrace_id.into());
        json!({ "error": e })
    }

    pub(super) fn response(&self, fbtrace_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(self.body(fbtrace_id))).into_response();
        if self.code == 190 {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_token\""),
            );
        }
        response
    }
}
