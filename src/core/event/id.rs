//! The identifiers of an event, each checked where it is made: its id (`EventId`), kind, currency
//! and subject, and the check every id goes through (`check_id`, ADR 0006).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was refused: a stable field-error code and a message. The message never
/// quotes the value; it names the offending code point (`U+200B`) at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdError {
    /// `required`, `too_long`, `invalid_characters` or `invalid`.
    pub code: &'static str,
    pub message: String,
}

impl IdError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The first character that would make two ids look the same while comparing different
/// (`"INV-1042"` and `"INV-1042\u{200b}"`): Unicode format characters (Cf: zero-width space and
/// joiners, BOM, bidi embeddings, overrides and isolates, soft hyphen, tags), controls (Cc), line
/// and paragraph separators (Zl, Zp), and the other default-ignorable fillers and variation
/// selectors that render as nothing. See docs/adr/0006-invisible-characters-in-ids.md.
pub fn invisible_char(s: &str) -> Option<char> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};
    s.chars().find(|&c| {
        matches!(
            c.general_category(),
            GeneralCategory::Format
                | GeneralCategory::Control
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        ) || matches!(c, '\u{34F}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{3164}' | '\u{FFA0}')
            || ('\u{FE00}'..='\u{FE0F}').contains(&c)
            || ('\u{E0100}'..='\u{E01EF}').contains(&c)
    })
}

/// The one rule for every identifier a source hands over (event ids, subject type and id, the
/// ids Stripe, Shopify and Segment give): not empty, at most `max_chars` characters, no
/// surrounding whitespace, no invisible characters ([`invisible_char`]). Refused, not cleaned:
/// an id is the deduplication key, and a silently rewritten one would merge what the source
/// keeps apart.
pub fn check_id(s: &str, max_chars: usize) -> Result<(), IdError> {
    if s.trim().is_empty() {
        return Err(IdError::new("required", "must not be empty"));
    }
    if s.chars().count() > max_chars {
        return Err(IdError::new("too_long", format!("must be at most {max_chars} characters")));
    }
    if let Some(c) = invisible_char(s) {
        return Err(IdError::new(
            "invalid_characters",
            format!("must not contain invisible, control or direction characters (found U+{:04X})", u32::from(c)),
        ));
    }
    if s.trim() != s {
        return Err(IdError::new("invalid", "must not have surrounding whitespace"));
    }
    Ok(())
}

/// A business event's stable id: given by the source or derived from subject and kind.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub const MAX_LEN: usize = 256;

    /// Accepts what [`check_id`] accepts, at most 256 characters.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        check_id(s, Self::MAX_LEN)?;
        Ok(Self(s.to_owned()))
    }

    /// The id of an event whose source gave none: `{subject type}:{subject id}:{kind}`.
    /// Deterministic, so a redelivery or re-import of the same business event gets the same id.
    pub fn derive(subject: &Subject, kind: &Kind) -> Self {
        Self(format!("{}:{}:{}", subject.kind, subject.id, kind.as_str()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What happened, as named in the catalog: lowercase letters, digits and underscores.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Kind(String);

impl Kind {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1-64 characters: lowercase letters, digits and '_', starting with a letter".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ISO 4217 currency code, three uppercase letters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    /// An active ISO 4217 currency code, any case (see [`crate::core::currency`]).
    pub fn parse(s: &str) -> Result<Self, String> {
        let up = s.trim().to_ascii_uppercase();
        if up.len() == 3 && crate::core::currency::is_active(&up) {
            Ok(Self(up))
        } else {
            Err("must be an active ISO 4217 currency code such as EUR".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the event is about; the join key to the identity bridge.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Subject {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

impl Subject {
    /// Longest subject type or id, in characters.
    pub const MAX_LEN: usize = 200;

    /// Checks both parts with [`check_id`]; a type may not contain ':' (derived event ids are
    /// `type:id:kind`). Errors are named `type` and `id`.
    pub fn parse(kind: String, id: String) -> Result<Self, Vec<(&'static str, IdError)>> {
        let mut errors = Vec::new();
        for (name, v) in [("type", &kind), ("id", &id)] {
            if let Err(e) = check_id(v, Self::MAX_LEN) {
                errors.push((name, e));
            } else if name == "type" && v.contains(':') {
                errors.push((name, IdError::new("invalid", "must not contain ':'")));
            }
        }
        if errors.is_empty() {
            Ok(Self { kind, id })
        } else {
            Err(errors)
        }
    }
}
