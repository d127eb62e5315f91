//! Bearer tokens with three roles: ingest (post events and identities), admin (everything), and
//! capture: the public keys `capture.js` sends from the browser, which may only post identities.

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::problem::Problem;
use crate::config::{AuthConfig, SecretValue};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Admin,
    /// `POST /v1/identities` from the browser; ingest and admin tokens may do it too.
    Capture,
}

pub struct Auth {
    ingest: Vec<SecretValue>,
    admin: Vec<SecretValue>,
    /// Public by design (they ship in the page), so compared plainly.
    capture: Vec<String>,
}

impl Auth {
    /// Resolves the configured tokens (validated before, so failures here are unexpected).
    pub fn from_config(c: &AuthConfig) -> anyhow::Result<Self> {
        let resolve = |list: &[crate::config::Secret]| -> anyhow::Result<Vec<SecretValue>> {
            list.iter().map(|s| s.resolve().map_err(anyhow::Error::msg)).collect()
        };
        Ok(Self {
            ingest: resolve(&c.ingest_tokens)?,
            admin: resolve(&c.admin_tokens)?,
            capture: c.capture_keys.clone(),
        })
    }

    /// No token configured at all: the API is open.
    pub fn is_open(&self) -> bool {
        self.ingest.is_empty() && self.admin.is_empty()
    }

    /// Checks the request's bearer token against the role (admin tokens may do everything).
    pub fn require(&self, headers: &HeaderMap, role: Role) -> Result<(), Problem> {
        if self.is_open() {
            return Ok(());
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .ok_or_else(Problem::unauthorized)?;
        let matches = |list: &[SecretValue]| {
            list.iter().fold(false, |found, t| found | bool::from(t.expose().as_bytes().ct_eq(token.as_bytes())))
        };
        if matches(&self.admin) {
            return Ok(());
        }
        if matches(&self.ingest) {
            return if matches!(role, Role::Ingest | Role::Capture) { Ok(()) } else { Err(Problem::forbidden()) };
        }
        if self.is_capture_key(headers) {
            return if role == Role::Capture { Ok(()) } else { Err(Problem::forbidden()) };
        }
        Err(Problem::unauthorized())
    }

    /// Who a request acts as, for the record (a settlement's `by`), never the token itself:
    /// `admin token #k` (its place in `auth.admin_tokens`, from 1), or `open API` when no token is
    /// configured. Call after `require(…, Role::Admin)`.
    pub fn who(&self, headers: &HeaderMap) -> String {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .unwrap_or_default();
        let at = self.admin.iter().enumerate().fold(None, |found, (i, t)| {
            if bool::from(t.expose().as_bytes().ct_eq(token.as_bytes())) {
                Some(i)
            } else {
                found
            }
        });
        match at {
            Some(i) => format!("admin token #{}", i + 1),
            None if self.is_open() => "open API".to_owned(),
            None => "unknown token".to_owned(),
        }
    }

    /// Whether the request carries a capture key: what it posts comes from a browser.
    pub fn is_capture_key(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        token.is_some_and(|t| self.capture.iter().any(|k| k == t))
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 9110 §11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Lets a request on to its handler only with a token of `role`: checked before the handler's
/// extractors, so a request without credentials learns nothing about its path or query.
pub async fn require(
    axum::extract::State((app, role)): axum::extract::State<(std::sync::Arc<crate::api::App>, Role)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match app.auth.require(request.headers(), role) {
        Ok(()) => next.run(request).await,
        Err(p) => p.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for v in ["Bearer t0k", "bearer t0k", "BEARER t0k", "bEaReR   t0k "] {
            assert_eq!(bearer_token(v), Some("t0k"), "{v}");
        }
        for v in ["Basic t0k", "Bearer", "Bearer ", "Bearert0k", "t0k"] {
            assert_eq!(bearer_token(v), None, "{v}");
        }
    }
}
