//! Sources that speak their own language: Stripe and Shopify webhooks and the Segment tracking
//! API. Each module verifies what arrived (signature or write key) on the raw bytes and maps the
//! source's objects to canonical event JSON — the same shape `POST /v1/events` takes — so that
//! validation, PII hashing and ids go through `ingest::canonical` exactly once, for every source.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

pub mod segment;
pub mod shopify;
pub mod stripe;

use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::config::sources::{IdentityKeys, SourcesConfig};
use crate::config::SecretValue;
use crate::core::ga_cookie;

/// What a source's message turned into.
#[derive(Debug, PartialEq)]
pub enum Mapped {
    /// Canonical events (JSON for `ingest::canonical::parse_event`) and, when the message carried
    /// identity for a subject, a capture for the identity bridge (JSON for `parse_capture`).
    /// `aliases` are other names the source uses for the events' subject (`stripe:pi_…`), so a
    /// later message that only knows those (a dispute) finds the same subject.
    Events { events: Vec<Value>, capture: Option<Value>, aliases: Vec<String> },
    /// Acknowledged and recorded, never routed: a type no kind is configured for, or a state
    /// that is not the business event (a checkout session still awaiting payment).
    Ignored(String),
}

/// A message that names a mapped type but cannot become an event (no amount, no subject, …).
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct MapError {
    pub field: String,
    pub message: String,
}

impl MapError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// The sources' secrets, resolved once at start.
#[derive(Default)]
pub struct SourceSecrets {
    pub stripe: Vec<SecretValue>,
    pub shopify: Vec<SecretValue>,
    pub segment: Vec<SecretValue>,
}

impl SourceSecrets {
    pub fn resolve(c: &SourcesConfig) -> anyhow::Result<Self> {
        let all = |list: Vec<&crate::config::Secret>| -> anyhow::Result<Vec<SecretValue>> {
            list.into_iter().map(|s| s.resolve().map_err(|e| anyhow::anyhow!("{}: {e}", s.reference()))).collect()
        };
        Ok(Self {
            stripe: match &c.stripe {
                Some(s) => all(std::iter::once(&s.signing_secret).chain(&s.previous_signing_secrets).collect())?,
                None => vec![],
            },
            shopify: match &c.shopify {
                Some(s) => all(std::iter::once(&s.signing_secret).chain(&s.previous_signing_secrets).collect())?,
                None => vec![],
            },
            segment: match &c.segment {
                Some(s) => all(s.write_keys.iter().collect())?,
                None => vec![],
            },
        })
    }
}

/// Why a signature was refused; `code` is the problem+json code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is malformed")]
    Malformed,
    #[error("the signature header has no v1 signature")]
    NoV1,
    #[error("no signature matches the body with any configured secret")]
    Mismatch,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
}

impl SignatureError {
    pub fn code(self) -> &'static str {
        match self {
            Self::Missing => "missing_signature",
            Self::Malformed | Self::NoV1 => "malformed_signature",
            Self::Mismatch => "invalid_signature",
            Self::Stale => "stale_signature",
        }
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key` (both Stripe and Shopify sign this way).
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time equality over the full length of both (length itself is not secret).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A non-empty string from a JSON value: strings as they are, integers in full (Shopify ids
/// exceed 2^53: serde_json keeps them as exact u64, never as floats).
pub(crate) fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads the first of `keys` that any of `maps` has.
fn lookup(maps: &[&Map<String, Value>], keys: &[String]) -> Option<String> {
    keys.iter().find_map(|key| maps.iter().find_map(|m| text(m.get(key))))
}

/// Identity and consent that a source's free-form attributes carry under the configured keys.
pub(crate) fn keyed_identity(
    maps: &[&Map<String, Value>],
    keys: &IdentityKeys,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut identity = Map::new();
    for (field, names) in keys.identity_fields() {
        if let Some(v) = lookup(maps, names) {
            let v = if field == "client_id" { ga_cookie::client_id(&v) } else { v };
            identity.insert(field.to_owned(), Value::String(v));
        }
    }
    if !identity.contains_key("session_id") && !keys.session_id.is_empty() {
        let cookie = maps.iter().flat_map(|m| m.iter()).find(|(k, _)| k.starts_with("_ga_"));
        if let Some(id) = cookie.and_then(|(_, v)| ga_cookie::session_from_cookie(v.as_str()?)) {
            identity.insert("session_id".into(), Value::String(id));
        }
    }
    let mut consent = Map::new();
    for (purpose, names) in keys.consent_fields() {
        let state = match lookup(maps, names).map(|v| v.to_ascii_lowercase()).as_deref() {
            Some("granted" | "true" | "yes" | "1") => "granted",
            Some("denied" | "false" | "no" | "0") => "denied",
            _ => continue,
        };
        consent.insert(purpose.to_owned(), Value::String(state.to_owned()));
    }
    (identity, consent)
}

/// Sets `identity[field]` from `value` unless already set or empty.
pub(crate) fn put(identity: &mut Map<String, Value>, field: &str, value: Option<String>) {
    if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
        identity.entry(field.to_owned()).or_insert(Value::String(v));
    }
}

/// A capture for the bridge when the message carried identity or consent for its subject.
pub(crate) fn capture_for(event: &Value) -> Option<Value> {
    let identity = event.get("identity").and_then(Value::as_object).filter(|m| !m.is_empty());
    let consent = event.get("consent").and_then(Value::as_object).filter(|m| !m.is_empty());
    if identity.is_none() && consent.is_none() {
        return None;
    }
    let mut capture = Map::new();
    capture.insert("subject".into(), event.get("subject")?.clone());
    capture.insert("captured_at".into(), event.get("occurred_at")?.clone());
    if let Some(i) = identity {
        capture.insert("identity".into(), Value::Object(i.clone()));
    }
    if let Some(c) = consent {
        capture.insert("consent".into(), Value::Object(c.clone()));
    }
    Some(Value::Object(capture))
}

/// A decimal amount written as a string ("129.90", Shopify) or a number.
pub(crate) fn decimal(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn big_integers_are_read_exactly() {
        let v: Value = serde_json::from_str(r#"{"id": 5630812345678901234}"#).unwrap();
        assert_eq!(text(v.get("id")).as_deref(), Some("5630812345678901234"));
        // Floats are not ids.
        assert_eq!(text(Some(&json!(1.5))), None);
    }

    #[test]
    fn keyed_identity_reads_configured_names_and_consent_words() {
        let m = json!({"ga_client_id": "123.456", "gclid": "", "consent_ad_user_data": "false", "fbp": 42})
            .as_object()
            .cloned()
            .unwrap();
        let (identity, consent) = keyed_identity(&[&m], &IdentityKeys::default());
        assert_eq!(identity.get("client_id"), Some(&json!("123.456")));
        assert_eq!(identity.get("gclid"), None, "empty values are absent");
        assert_eq!(identity.get("fbp"), Some(&json!("42")));
        assert_eq!(consent.get("ad_user_data"), Some(&json!("denied")));
        let off = IdentityKeys { client_id: vec![], ..IdentityKeys::default() };
        assert_eq!(keyed_identity(&[&m], &off).0.get("client_id"), None);
    }

    #[test]
    fn ga_cookies_give_client_and_session_ids() {
        let m = json!({"_ga": "GA1.1.1234567890.1714650000", "_ga_ABC123": "GS1.1.1714651000.3.1.1714651391.0.0.0"})
            .as_object()
            .cloned()
            .unwrap();
        let (identity, _) = keyed_identity(&[&m], &IdentityKeys::default());
        assert_eq!(identity["client_id"], "1234567890.1714650000");
        assert_eq!(identity["session_id"], "1714651000");
        assert_eq!(
            ga_cookie::session_from_cookie("GS2.1.s1714651000$o3$g1$t1714651391$j60$l0$h0").as_deref(),
            Some("1714651000")
        );
        assert_eq!(ga_cookie::session_from_cookie("nonsense"), None);
        assert_eq!(ga_cookie::client_id("555.666"), "555.666");
    }

    #[test]
    fn capture_needs_identity_or_consent() {
        let e = json!({"subject": {"type": "order", "id": "1"}, "occurred_at": "2026-11-20T10:00:00Z", "identity": {}});
        assert_eq!(capture_for(&e), None);
        let e = json!({"subject": {"type": "order", "id": "1"}, "occurred_at": "2026-11-20T10:00:00Z",
                       "identity": {"client_id": "1.2"}});
        let c = capture_for(&e).unwrap();
        assert_eq!(c["subject"]["id"], "1");
        assert_eq!(c["identity"]["client_id"], "1.2");
    }

    #[test]
    fn same_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
