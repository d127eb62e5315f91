//! OAuth 2.0 for Google's APIs with a service-account key (the Data Manager API for Google Ads,
//! the GA4 Data API for reading GA4's count back): the JWT bearer grant
//! (RFC 7523; developers.google.com/identity/protocols/oauth2/service-account "Preparing to make
//! an authorized API call"). An RS256-signed assertion `{iss, scope, aud, iat, exp}` is exchanged
//! at the token endpoint for an access token, which is cached and renewed before it expires.
//!
//! Nothing here is `Debug`: the key, the assertion and the token never reach a log, an error, a
//! request record or the ledger. A refused grant (`invalid_grant`, …) is reported with Google's
//! error code only, as an `Outcome::Halt`, so the worker stops the destination instead of retrying.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::core::pii::sha256_hex;
use crate::core::{Outcome, RequestRecord};
use crate::delivery::http::{self as exchange, Exchange};

/// Google accepts assertions valid for at most an hour.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Renew a token this long before it expires (or halfway, for short-lived tokens).
const RENEW_BEFORE_SECS: i64 = 300;

/// Why the service-account key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("is not a service-account JSON key file")]
    NotJson,
    #[error("has no client_email")]
    NoClientEmail,
    #[error("has no usable RSA private_key (PEM, PKCS#8)")]
    BadPrivateKey,
}

/// A service account's identity and signing key, from its JSON key file.
pub struct ServiceAccount {
    client_email: String,
    /// The OAuth scope its assertions ask for (one per API).
    scope: &'static str,
    key_id: Option<String>,
    key: EncodingKey,
}

impl ServiceAccount {
    /// Reads a JSON key file for tokens of `scope`.
    pub fn from_json(text: &str, scope: &'static str) -> Result<Self, KeyError> {
        #[derive(Deserialize)]
        struct KeyFile {
            #[serde(default)]
            client_email: String,
            #[serde(default)]
            private_key_id: Option<String>,
            #[serde(default)]
            private_key: String,
        }
        let file: KeyFile = serde_json::from_str(text).map_err(|_| KeyError::NotJson)?;
        if file.client_email.trim().is_empty() {
            return Err(KeyError::NoClientEmail);
        }
        let key = EncodingKey::from_rsa_pem(file.private_key.as_bytes()).map_err(|_| KeyError::BadPrivateKey)?;
        let account = Self { client_email: file.client_email, scope, key_id: file.private_key_id, key };
        // Sign once now, so a key that parses but cannot sign fails at start, not at first send.
        account.assertion("https://oauth2.googleapis.com/token", Utc::now()).map_err(|_| KeyError::BadPrivateKey)?;
        Ok(account)
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The signed JWT for the grant, valid from `now` for an hour.
    pub fn assertion(&self, token_url: &str, now: DateTime<Utc>) -> Result<String, jsonwebtoken::errors::Error> {
        #[derive(Serialize)]
        struct Claims<'a> {
            iss: &'a str,
            scope: &'a str,
            aud: &'a str,
            iat: i64,
            exp: i64,
        }
        let iat = now.timestamp();
        let claims = Claims {
            iss: &self.client_email,
            scope: self.scope,
            aud: token_url,
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key_id.clone();
        jsonwebtoken::encode(&header, &claims, &self.key)
    }
}

/// An access token. Not `Debug`, not `Display`: it can be put in a header, not printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Bearer(String);

impl Bearer {
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

struct Cached {
    bearer: Bearer,
    renew_at: DateTime<Utc>,
}

/// Why no token could be had.
#[derive(Clone, Debug, PartialEq)]
pub enum TokenError {
    /// The endpoint refused the grant: fixing it takes a person (an [`Outcome::Halt`]).
    Refused(String),
    /// The endpoint could not be reached or failed: try again later.
    Unavailable { reason: String, retry_after: Option<std::time::Duration> },
}

impl TokenError {
    /// What it means for the deliveries that needed the token.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Refused(_) => Outcome::halt(self.reason()),
            Self::Unavailable { retry_after, .. } => Outcome::retry(self.reason(), *retry_after),
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Self::Refused(why) => format!("Google refused the service account's token grant: {why}"),
            Self::Unavailable { reason, .. } => format!("token endpoint: {reason}"),
        }
    }

    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Refused(_) => None,
            Self::Unavailable { retry_after, .. } => *retry_after,
        }
    }
}

/// Access tokens for one service account, fetched once and shared by every send.
pub struct TokenSource {
    account: ServiceAccount,
    token_url: String,
    client: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

impl TokenSource {
    pub fn new(account: ServiceAccount, token_url: String, client: reqwest::Client) -> Self {
        Self { account, token_url, client, cached: Mutex::new(None) }
    }

    /// A token usable at `now`: the cached one, or a new one. A failed token request is appended
    /// to `requests` (with Google's error code, never a body); a successful one is not recorded.
    pub async fn bearer(&self, now: DateTime<Utc>, requests: &mut Vec<RequestRecord>) -> Result<Bearer, TokenError> {
        // Held across the fetch: concurrent sends wait for one grant instead of each making one.
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| now < c.renew_at) {
            return Ok(c.bearer.clone());
        }
        let (result, record) = self.fetch(now).await;
        if let Some(record) = record {
            requests.push(record);
        }
        let fresh = result?;
        let bearer = fresh.bearer.clone();
        *cached = Some(fresh);
        Ok(bearer)
    }

    /// Forgets `bearer` if it is still the cached token (the platform said it is no good).
    pub async fn invalidate(&self, bearer: &Bearer) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.bearer == bearer) {
            *cached = None;
        }
    }

    async fn fetch(&self, now: DateTime<Utc>) -> (Result<Cached, TokenError>, Option<RequestRecord>) {
        let assertion = match self.account.assertion(&self.token_url, now) {
            Ok(a) => a,
            Err(_) => return (Err(TokenError::Refused("the assertion could not be signed".into())), None),
        };
        let form = format!(
            "grant_type={}&assertion={}",
            urlencode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            urlencode(&assertion)
        );
        let body_sha256 = sha256_hex(form.as_bytes());
        let request = self
            .client
            .post(&self.token_url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form);
        let mut ex = exchange::send("token", request, body_sha256).await;
        let result = read_token_answer(&ex, now);
        // The answer holds the token when it succeeded: keep only what explains a failure.
        ex.record.response_excerpt = match &result {
            Ok(_) => String::new(),
            Err(TokenError::Refused(why)) => why.clone(),
            Err(TokenError::Unavailable { reason, .. }) => reason.clone(),
        };
        let record = result.is_err().then_some(ex.record);
        (result, record)
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Reads the token endpoint's answer: a token, a refusal, or a failure worth retrying.
fn read_token_answer(ex: &Exchange, now: DateTime<Utc>) -> Result<Cached, TokenError> {
    #[derive(Deserialize)]
    struct Granted {
        access_token: String,
        #[serde(default)]
        expires_in: Option<i64>,
    }
    #[derive(Deserialize)]
    struct Refusal {
        #[serde(default)]
        error: String,
        #[serde(default)]
        error_description: String,
    }
    let unavailable = |reason: String| TokenError::Unavailable { reason, retry_after: ex.retry_after };
    let status = match ex.record.status {
        None if ex.timed_out => return Err(unavailable("timeout".into())),
        None => {
            return Err(unavailable(format!("network error: {}", ex.record.error.as_deref().unwrap_or("no answer"))))
        }
        Some(s) => s,
    };
    if (200..300).contains(&status) {
        return match serde_json::from_slice::<Granted>(&ex.body) {
            Ok(g) if !g.access_token.is_empty() => {
                let lifetime = g.expires_in.unwrap_or(3600).max(1);
                let renew_before = RENEW_BEFORE_SECS.min(lifetime / 2);
                Ok(Cached {
                    bearer: Bearer(g.access_token),
                    renew_at: now + Duration::seconds(lifetime - renew_before),
                })
            }
            _ => Err(unavailable(format!("HTTP {status} without an access token"))),
        };
    }
    if status == 408 || status == 429 || status >= 500 {
        return Err(unavailable(format!("HTTP {status}")));
    }
    // Google's error code and description name the problem (invalid_grant: key revoked or
    // clock skew; unauthorized_client; invalid_scope…); they hold no secret.
    let why = match serde_json::from_slice::<Refusal>(&ex.body) {
        Ok(r) if !r.error.is_empty() => {
            let description: String = r.error_description.chars().take(200).collect();
            if description.is_empty() {
                format!("HTTP {status} {}", r.error)
            } else {
                format!("HTTP {status} {}: {description}", r.error)
            }
        }
        _ => format!("HTTP {status}"),
    };
    Err(TokenError::Refused(why))
}
