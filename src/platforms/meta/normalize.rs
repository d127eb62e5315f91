//! Meta's normalisation of the customer information parameters Surety derives itself — `ct`,
//! `st`, `zp` and `country` from the plain city, region, postal code and country, and
//! `external_id` from the user id — exactly as the official SDK does (`facebook-business`,
//! `facebook_business/adobjects/serverside/normalize.py`, `Normalize.normalize_field`), checked
//! against `tests/vectors/meta/normalize.json` (made by `scripts/meta_vectors.py`). The contact
//! fields (`em`, `ph`, `fn`, `ln`) and gender and date of birth (`ge`, `db`) are hashed at ingest
//! by `core::pii` instead (its `meta` scheme), checked against the same vectors.
//!
//! The SDK's steps, for every field: lowercase (full Unicode, like Python's `str.lower`), strip
//! Python whitespace at both ends, and pass a value that already looks hashed (64 or 32 lowercase
//! hex characters) through untouched. Then per field:
//! - `ct`, `st`: remove ASCII digits, `.`, whitespace, `-`, `(` and `)` (nothing else: an
//!   apostrophe or an accented letter stays; a state name is not mapped to its code);
//! - `zp`: remove whitespace, keep what precedes the first `-` (`94035-1234` → `94035`);
//! - `country`: remove everything but `a`–`z`; the result must be an ISO 3166-1 alpha-2 code;
//! - `external_id`: nothing more (the generic rule).
//!
//! Then SHA-256, lowercase hex.
//!
//! Where Surety departs from the SDK, on purpose: the SDK raises on an unknown country code and
//! hashes an empty string when normalisation leaves nothing (a city given as `12345`); Surety
//! leaves such a value out of `user_data` instead — neither could ever match anyone, and neither
//! is a reason to refuse the event. (The SDK's `UserData` sends `external_id` as given, unhashed;
//! Meta recommends hashing it, and `normalize_field` is the SDK's own rule for doing so.)

use crate::core::pii::sha256_hex;

/// A customer information parameter Surety normalises itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    City,
    State,
    Zip,
    Country,
    ExternalId,
}

impl Field {
    /// The `user_data` key.
    pub fn key(self) -> &'static str {
        match self {
            Self::City => "ct",
            Self::State => "st",
            Self::Zip => "zp",
            Self::Country => "country",
            Self::ExternalId => "external_id",
        }
    }

    pub fn from_key(key: &str) -> Option<Self> {
        [Self::City, Self::State, Self::Zip, Self::Country, Self::ExternalId].into_iter().find(|f| f.key() == key)
    }
}

/// Python's `str.isspace`: Unicode `White_Space` plus the four information separators
/// U+001C–U+001F, which Python also counts (and Rust's `char::is_whitespace` does not).
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `^[a-f0-9]{64}$` or `^[a-f0-9]{32}$`: what the SDK takes as already hashed (SHA-256 or MD5).
fn looks_hashed(s: &str) -> bool {
    (s.len() == 64 || s.len() == 32) && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The normalised text of `raw`, as the SDK's `normalize_field_skip_hashing` makes it, or
/// `None` when nothing usable is left (see the module notes).
pub fn normalize(field: Field, raw: &str) -> Option<String> {
    let lower = raw.to_lowercase();
    let s = lower.trim_matches(is_py_space);
    if s.is_empty() {
        return None;
    }
    if looks_hashed(s) {
        return Some(s.to_owned());
    }
    let normalised: String = match field {
        Field::City | Field::State => s
            .chars()
            .filter(|&c| !(c.is_ascii_digit() || is_py_space(c) || matches!(c, '.' | '-' | '(' | ')')))
            .collect(),
        Field::Zip => {
            let compact: String = s.chars().filter(|&c| !is_py_space(c)).collect();
            compact.split('-').next().unwrap_or_default().to_owned()
        }
        Field::Country => {
            let letters: String = s.chars().filter(char::is_ascii_lowercase).collect();
            if !is_country_code(&letters) {
                return None;
            }
            letters
        }
        Field::ExternalId => s.to_owned(),
    };
    (!normalised.is_empty()).then_some(normalised)
}

/// The value Meta gets for `raw`: SHA-256 hex of the normalised text, or the text itself when
/// it already looked hashed. `None` when nothing usable is left.
pub fn hash(field: Field, raw: &str) -> Option<String> {
    let normalised = normalize(field, raw)?;
    if looks_hashed(&normalised) {
        Some(normalised)
    } else {
        Some(sha256_hex(normalised.as_bytes()))
    }
}

/// A lowercase ISO 3166-1 alpha-2 code the SDK accepts (its list comes from `pycountry`).
pub fn is_country_code(code: &str) -> bool {
    COUNTRY_CODES.binary_search(&code).is_ok()
}

/// ISO 3166-1 alpha-2, lowercase, sorted: `pycountry`'s list as the SDK uses it (the vector file
/// records the list it was generated with, and a test compares the two).
pub const COUNTRY_CODES: &[&str] = &[
    "ad", "ae", "af", "ag", "ai", "al", "am", "ao", "aq", "ar", "as", "at", "au", "aw", "ax", "az", "ba", "bb", "bd",
    "be", "bf", "bg", "bh", "bi", "bj", "bl", "bm", "bn", "bo", "bq", "br", "bs", "bt", "bv", "bw", "by", "bz", "ca",
    "cc", "cd", "cf", "cg", "ch", "ci", "ck", "cl", "cm", "cn", "co", "cr", "cu", "cv", "cw", "cx", "cy", "cz", "de",
    "dj", "dk", "dm", "do", "dz", "ec", "ee", "eg", "eh", "er", "es", "et", "fi", "fj", "fk", "fm", "fo", "fr", "ga",
    "gb", "gd", "ge", "gf", "gg", "gh", "gi", "gl", "gm", "gn", "gp", "gq", "gr", "gs", "gt", "gu", "gw", "gy", "hk",
    "hm", "hn", "hr", "ht", "hu", "id", "ie", "il", "im", "in", "io", "iq", "ir", "is", "it", "je", "jm", "jo", "jp",
    "ke", "kg", "kh", "ki", "km", "kn", "kp", "kr", "kw", "ky", "kz", "la", "lb", "lc", "li", "lk", "lr", "ls", "lt",
    "lu", "lv", "ly", "ma", "mc", "md", "me", "mf", "mg", "mh", "mk", "ml", "mm", "mn", "mo", "mp", "mq", "mr", "ms",
    "mt", "mu", "mv", "mw", "mx", "my", "mz", "na", "nc", "ne", "nf", "ng", "ni", "nl", "no", "np", "nr", "nu", "nz",
    "om", "pa", "pe", "pf", "pg", "ph", "pk", "pl", "pm", "pn", "pr", "ps", "pt", "pw", "py", "qa", "re", "ro", "rs",
    "ru", "rw", "sa", "sb", "sc", "sd", "se", "sg", "sh", "si", "sj", "sk", "sl", "sm", "sn", "so", "sr", "ss", "st",
    "sv", "sx", "sy", "sz", "tc", "td", "tf", "tg", "th", "tj", "tk", "tl", "tm", "tn", "to", "tr", "tt", "tv", "tw",
    "tz", "ua", "ug", "um", "us", "uy", "uz", "va", "vc", "ve", "vg", "vi", "vn", "vu", "wf", "ws", "ye", "yt", "za",
    "zm", "zw",
];
