//! Bearer tokens with three roles: ingest (post events and identities), admin (everything), and
//! capture: the public keys `capture.js` sends from the browser, which may only post identities.

use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
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
    /// Signs the console's CSRF tokens when no admin token is configured (an open API): random
    /// per process.
    csrf_key: [u8; 32],
}

/// How long a console form's CSRF token is accepted after the page that carried it was served.
pub const CSRF_TTL_SECS: i64 = 12 * 3600;

/// Why a console form's CSRF token was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsrfRefusal {
    Missing,
    Malformed,
    Expired,
    Invalid,
}

impl CsrfRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "the form carries no CSRF token: reload the event page and submit its form",
            Self::Malformed => "the form's CSRF token is malformed: reload the event page and submit its form",
            Self::Expired => "the form's CSRF token has expired: reload the event page and submit its form again",
            Self::Invalid => {
                "the form's CSRF token was not issued for this credential: reload the event page and submit its form"
            }
        }
    }
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
            csrf_key: rand::random(),
        })
    }

    /// A CSRF token for the console's forms (HMAC-SHA256 token pattern): `ISSUED.MAC`, where
    /// ISSUED is the Unix time in seconds and MAC = HMAC-SHA256(key, "surety-console-csrf:" +
    /// ISSUED), the key being SHA-256 of the admin credential the request came with (a token
    /// bound to it, the same in every process serving the ledger), or a per-process random key
    /// when the API is open. A page from another site can neither read nor compute it.
    pub fn csrf_token(&self, headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> String {
        let issued = now.timestamp();
        format!("{issued}.{}", hex::encode(self.csrf_mac(headers, issued)))
    }

    /// Checks a console form's token against the request's credential, in constant time.
    pub fn check_csrf(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), CsrfRefusal> {
        let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(CsrfRefusal::Missing)?;
        let (issued, mac) = token.split_once('.').ok_or(CsrfRefusal::Malformed)?;
        let issued: i64 = issued.parse().map_err(|_| CsrfRefusal::Malformed)?;
        let mac = hex::decode(mac).map_err(|_| CsrfRefusal::Malformed)?;
        let age = now.timestamp().saturating_sub(issued);
        // A minute of clock skew between processes sharing a ledger is tolerated.
        if !(-60..=CSRF_TTL_SECS).contains(&age) {
            return Err(CsrfRefusal::Expired);
        }
        if bool::from(self.csrf_mac(headers, issued).as_slice().ct_eq(&mac)) {
            Ok(())
        } else {
            Err(CsrfRefusal::Invalid)
        }
    }

    fn csrf_mac(&self, headers: &HeaderMap, issued: i64) -> [u8; 32] {
        let key: [u8; 32] = if self.is_open() {
            self.csrf_key
        } else {
            let credential = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token)
                .unwrap_or_default();
            let mut h = Sha256::new();
            h.update(b"surety console csrf key\0");
            h.update(credential.as_bytes());
            h.finalize().into()
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes a key of any length");
        mac.update(format!("surety-console-csrf:{issued}").as_bytes());
        mac.finalize().into_bytes().into()
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
    use axum::http::{header, HeaderMap, HeaderValue};

    use super::{bearer_token, Auth, CsrfRefusal, CSRF_TTL_SECS};
    use crate::config::{AuthConfig, Secret};

    fn bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    #[test]
    fn a_csrf_token_is_bound_to_the_credential_and_expires() {
        std::env::set_var("SURETY_UNIT_CSRF_A", "admin-token-aaaaaaaaaaaaaaaa");
        std::env::set_var("SURETY_UNIT_CSRF_B", "admin-token-bbbbbbbbbbbbbbbb");
        let config = AuthConfig {
            admin_tokens: vec![
                Secret::try_from("env:SURETY_UNIT_CSRF_A".to_owned()).unwrap(),
                Secret::try_from("env:SURETY_UNIT_CSRF_B".to_owned()).unwrap(),
            ],
            ..AuthConfig::default()
        };
        let auth = Auth::from_config(&config).unwrap();
        let other_process = Auth::from_config(&config).unwrap();
        let now = chrono::Utc::now();
        let a = bearer("admin-token-aaaaaaaaaaaaaaaa");
        let token = auth.csrf_token(&a, now);
        assert_eq!(auth.check_csrf(&a, Some(&token), now), Ok(()));
        assert_eq!(other_process.check_csrf(&a, Some(&token), now), Ok(()), "any process serving the ledger");
        let b = bearer("admin-token-bbbbbbbbbbbbbbbb");
        assert_eq!(auth.check_csrf(&b, Some(&token), now), Err(CsrfRefusal::Invalid));
        let later = now + chrono::Duration::seconds(CSRF_TTL_SECS + 1);
        assert_eq!(auth.check_csrf(&a, Some(&token), later), Err(CsrfRefusal::Expired));
        assert_eq!(auth.check_csrf(&a, None, now), Err(CsrfRefusal::Missing));
        assert_eq!(auth.check_csrf(&a, Some("nonsense"), now), Err(CsrfRefusal::Malformed));
        let (issued, mac) = token.split_once('.').unwrap();
        let forged = format!("{}.{mac}", issued.parse::<i64>().unwrap() + 1);
        assert_eq!(auth.check_csrf(&a, Some(&forged), now), Err(CsrfRefusal::Invalid), "the time is signed too");
    }

    #[test]
    fn an_open_api_signs_with_a_key_of_its_own() {
        let auth = Auth::from_config(&AuthConfig::default()).unwrap();
        let other = Auth::from_config(&AuthConfig::default()).unwrap();
        let now = chrono::Utc::now();
        let token = auth.csrf_token(&HeaderMap::new(), now);
        assert_eq!(auth.check_csrf(&HeaderMap::new(), Some(&token), now), Ok(()));
        assert_eq!(other.check_csrf(&HeaderMap::new(), Some(&token), now), Err(CsrfRefusal::Invalid));
    }

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
