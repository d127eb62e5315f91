//! Personal data: normalisation and SHA-256 hashing at ingest, so raw values never reach disk.
//!
//! Google (GA4 `user_data`, Data Manager API) and Meta (Conversions API) normalise differently —
//! Google drops the dots of a gmail.com local part and writes phones as E.164 with `+`, Meta keeps
//! the dots and writes phones as digits only — so each personal field is hashed once per scheme.
//! Rules: docs/platforms.md §GA4 "User-provided data", §Google Ads "Hashing", §Meta "Normalisation".
//!
//! Gender and date of birth are Meta's alone (`ge`, `db`): GA4, the Data Manager API and LinkedIn
//! take neither, so both schemes of those fields hold the same hash of Meta's documented form.

use std::fmt;

use chrono::{Datelike, NaiveDate};
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

/// Gender as Meta documents it (`ge`): `f` or `m`. Accepts those letters and the words `female`
/// and `male`, in any case, trimmed.
///
/// Meta's SDK validates nothing here — `Normalize.normalize_field("ge", …)` lowercases, trims and
/// hashes any text, so it would hash `female` as the word, which matches nobody — while its
/// `UserData` only takes the `Gender` enum, whose values are `f` and `m`. Surety therefore maps
/// the words to the letters and refuses everything else rather than send a hash that cannot match.
pub fn normalise_gender(raw: &str) -> Result<&'static str, PiiError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "f" | "female" => Ok("f"),
        "m" | "male" => Ok("m"),
        _ => Err(PiiError("must be \"f\" or \"female\", \"m\" or \"male\" (any case)".into())),
    }
}

/// Gender, hashed as Meta's `ge` (the SDK's hash of `f` or `m`). A 64-hex value is taken as
/// already hashed.
pub fn hash_gender(raw: &str) -> Result<Hashed, PiiError> {
    if let Some(h) = Sha256Hex::parse(raw) {
        return Ok(Hashed::same(h));
    }
    Ok(Hashed::same(Sha256Hex::of(normalise_gender(raw)?)))
}

/// The earliest date of birth taken as real; anything before is a typo or a placeholder.
const EARLIEST_BIRTH_YEAR: i32 = 1900;

/// Date of birth as Meta documents it (`db`): `YYYYMMDD`. Accepts `YYYY-MM-DD` (ISO 8601, the
/// canonical form) and `YYYYMMDD` (the form the SDK's `UserData` documents), trimmed; the date
/// must exist and lie between 1900-01-01 and `today`.
///
/// Meta's SDK checks no date: `normalize_field("db", …)` lowercases, trims and hashes any text,
/// so `1990-01-31` would be hashed with its dashes and `1990-02-30` hashed at all. Other orders
/// (`31.01.1990`, `01/31/1990`) are refused rather than guessed: day and month are ambiguous.
pub fn normalise_date_of_birth(raw: &str, today: NaiveDate) -> Result<String, PiiError> {
    let s = raw.trim();
    // Strict shapes: chrono alone would also take `1990-1-31` or a signed year.
    let shaped = |pattern: &str| {
        s.len() == pattern.len()
            && s.bytes().zip(pattern.bytes()).all(|(c, p)| if p == b'9' { c.is_ascii_digit() } else { c == p })
    };
    let format = if shaped("9999-99-99") {
        "%Y-%m-%d"
    } else if shaped("99999999") {
        "%Y%m%d"
    } else {
        return Err(PiiError("must be a date as YYYY-MM-DD (or YYYYMMDD), e.g. 1990-01-31".into()));
    };
    let date = NaiveDate::parse_from_str(s, format)
        .map_err(|_| PiiError("is not a calendar date (month 01-12, day within the month)".into()))?;
    if date.year() < EARLIEST_BIRTH_YEAR || date > today {
        return Err(PiiError(format!("must lie between {EARLIEST_BIRTH_YEAR}-01-01 and today")));
    }
    Ok(date.format("%Y%m%d").to_string())
}

/// Date of birth, hashed as Meta's `db` (the SDK's hash of `YYYYMMDD`). A 64-hex value is taken
/// as already hashed.
pub fn hash_date_of_birth(raw: &str, today: NaiveDate) -> Result<Hashed, PiiError> {
    if let Some(h) = Sha256Hex::parse(raw) {
        return Ok(Hashed::same(h));
    }
    Ok(Hashed::same(Sha256Hex::of(&normalise_date_of_birth(raw, today)?)))
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
