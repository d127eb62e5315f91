//! Personal data: normalisation and SHA-256 hashing at ingest, so raw values never reach disk.
//!
//! Google (GA4 `user_data`, Data Manager API) and Meta (Conversions API) normalise differently —
//! Google drops the dots of a gmail.com local part and writes phones as E.164 with `+`, Meta keeps
//! the dots and writes phones as digits only — so each personal field is hashed once per scheme.
//! Rules: PLATFORMS.md §GA4 "User-provided data", §Google Ads "Hashing", §Meta "Normalisation".

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 digest as 64 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sha256Hex(String);

impl Sha256Hex {
    pub fn of(normalised: &str) -> Self {
        Self(sha256_hex(normalised.as_bytes()))
    }

    /// Accepts a value that already is a SHA-256 hex digest (any case).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        (s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| Self(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hex({})", &self.0)
    }
}

/// One personal field, hashed under each platform's normalisation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hashed {
    /// Google's rules: GA4 `user_data`, Data Manager API, and LinkedIn (same email rule set minus gmail dots is not
    /// documented there, so LinkedIn uses `meta`, which is plain trim + lowercase).
    pub google: Sha256Hex,
    /// Meta's rules (official `facebook-business` SDK normalisation).
    pub meta: Sha256Hex,
}

impl Hashed {
    fn same(h: Sha256Hex) -> Self {
        Self { google: h.clone(), meta: h }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why a personal field could not be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PiiError(pub String);

/// Email: trimmed and lowercased; Google also removes inner whitespace and the dots before the `@`
/// of gmail.com and googlemail.com addresses. A 64-hex value is taken as already hashed.
pub fn hash_email(raw: &str) -> Result<Hashed, PiiError> {
    if let Some(h) = Sha256Hex::parse(raw) {
        return Ok(Hashed::same(h));
    }
    let compact = normalise_email(raw)?;
    let google = google_email(&compact);
    // Meta's SDK only trims and lowercases (inner spaces stay); Google removes all whitespace.
    let meta = raw.trim().to_lowercase();
    Ok(Hashed { google: Sha256Hex::of(&google), meta: Sha256Hex::of(&meta) })
}

fn normalise_email(raw: &str) -> Result<String, PiiError> {
    let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    let (local, domain) = s.split_once('@').ok_or_else(|| PiiError("is not an email address (no '@')".into()))?;
    if local.is_empty() || domain.is_empty() || !domain.contains('.') || domain.contains('@') {
        return Err(PiiError("is not an email address".into()));
    }
    Ok(s)
}

fn google_email(normalised: &str) -> String {
    match normalised.split_once('@') {
        Some((local, domain)) if domain == "gmail.com" || domain == "googlemail.com" => {
            format!("{}@{}", local.replace('.', ""), domain)
        }
        _ => normalised.to_owned(),
    }
}

/// Phone: E.164. The input must carry its country code (`+49 …`, `0049 …` or `49…`); spaces,
/// dashes, dots and parentheses are dropped. Google hashes `+4915…`, Meta the digits `4915…`.
pub fn hash_phone(raw: &str) -> Result<Hashed, PiiError> {
    if let Some(h) = Sha256Hex::parse(raw) {
        return Ok(Hashed::same(h));
    }
    let digits = e164_digits(raw)?;
    Ok(Hashed { google: Sha256Hex::of(&format!("+{digits}")), meta: Sha256Hex::of(&digits) })
}

/// The digits of an E.164 number (without `+`).
pub fn e164_digits(raw: &str) -> Result<String, PiiError> {
    let s = raw.trim();
    let rest = s.strip_prefix('+').or_else(|| s.strip_prefix("00")).unwrap_or(s);
    if rest.chars().any(|c| !(c.is_ascii_digit() || " -.()/".contains(c))) {
        return Err(PiiError("may only contain digits, '+', spaces, '-', '.', '/' and parentheses".into()));
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    // No country code starts with 0: a leading 0 is a national trunk prefix, and guessing the
    // country would hash somebody else's number.
    if digits.starts_with('0') {
        return Err(PiiError("is a national number: include the country code, e.g. +49 151 …".into()));
    }
    if !(7..=15).contains(&digits.len()) {
        return Err(PiiError("must be an international number with country code, 7 to 15 digits".into()));
    }
    Ok(digits)
}

/// Names: lowercase, trimmed, punctuation and symbols removed (not replaced), inner spaces collapsed.
pub fn hash_name(raw: &str) -> Result<Hashed, PiiError> {
    if let Some(h) = Sha256Hex::parse(raw) {
        return Ok(Hashed::same(h));
    }
    let google = normalise_words(raw);
    if google.is_empty() {
        return Err(PiiError("is empty after normalisation".into()));
    }
    // Meta's SDK lowercases and trims names but keeps inner punctuation.
    let meta = raw.trim().to_lowercase();
    Ok(Hashed { google: Sha256Hex::of(&google), meta: Sha256Hex::of(&meta) })
}

/// Street: the same rule as names (Google: "lowercase, trimmed, no symbols").
pub fn hash_street(raw: &str) -> Result<Hashed, PiiError> {
    if let Some(h) = Sha256Hex::parse(raw) {
        return Ok(Hashed::same(h));
    }
    let s = normalise_words(raw);
    if s.is_empty() {
        return Err(PiiError("is empty after normalisation".into()));
    }
    Ok(Hashed::same(Sha256Hex::of(&s)))
}

fn normalise_words(raw: &str) -> String {
    let kept: String = raw.to_lowercase().chars().filter(|c| c.is_alphanumeric() || c.is_whitespace()).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Country: ISO 3166-1 alpha-2, stored uppercase (GA4 sends it plain).
pub fn normalise_country(raw: &str) -> Result<String, PiiError> {
    let s = raw.trim().to_ascii_uppercase();
    if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s)
    } else {
        Err(PiiError("must be an ISO 3166-1 alpha-2 code such as DE".into()))
    }
}

#[cfg(test)]
mod tests;
