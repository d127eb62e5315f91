//! The canonical business event as stored in the ledger: parsed, normalised, personal fields hashed.
//!
//! Everything here is already validated; the raw request shapes live in `crate::ingest`.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::pii::Hashed;

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
    /// An active ISO 4217 currency code, any case (see [`super::currency`]).
    pub fn parse(s: &str) -> Result<Self, String> {
        let up = s.trim().to_ascii_uppercase();
        if up.len() == 3 && super::currency::is_active(&up) {
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

/// The largest amount (event value or item price) Surety accepts, in the currency's major unit:
/// well above any real order (GA4, Meta, Google Ads and LinkedIn take doubles or decimal strings
/// and publish no bound), low enough that sums of items stay exact in an `f64`.
pub const MAX_AMOUNT: f64 = 1e12;
/// The largest quantity of one item: sums over a batch of items cannot overflow an `i64`.
pub const MAX_QUANTITY: i64 = 1_000_000;

/// Checks an amount: finite, not negative (a value is a magnitude: a refund or chargeback carries
/// the positive amount that went back; its kind says which way it went), at most [`MAX_AMOUNT`].
/// The error is `(code, message)`, without the value.
pub fn check_amount(v: f64) -> Result<f64, (&'static str, String)> {
    if !v.is_finite() {
        Err(("invalid", "must be a finite number".into()))
    } else if v < 0.0 {
        Err(("out_of_range", "must not be negative: a value is a magnitude, refunds carry positive amounts".into()))
    } else if v > MAX_AMOUNT {
        Err(("out_of_range", format!("must be at most {MAX_AMOUNT:e}")))
    } else {
        Ok(v)
    }
}

/// Checks a quantity: `0..=MAX_QUANTITY`.
pub fn check_quantity(q: i64) -> Result<i64, (&'static str, String)> {
    if q < 0 {
        Err(("out_of_range", "must not be negative".into()))
    } else if q > MAX_QUANTITY {
        Err(("out_of_range", format!("must be at most {MAX_QUANTITY}")))
    } else {
        Ok(q)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<i64>,
}

/// Identifiers known for the subject. Personal fields are only ever held hashed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Identity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<Hashed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<Hashed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<Hashed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<Hashed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street: Option<Hashed>,
    /// `f` or `m`, hashed (Meta `ge` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<Hashed>,
    /// `YYYYMMDD`, hashed (Meta `db` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<Hashed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gclid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gbraid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wbraid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fbc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub li_fat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The id the browser tag gave the same conversion (Meta pixel `eventID`, LinkedIn Insight
    /// Tag `eventId`), so a platform that dedupes on it keeps one of the two sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub browser_event_id: Option<String>,
}

/// The identifiers coverage counts (`surety coverage`, the `coverage` alert rule), by the names
/// of the canonical event's `identity` fields (`any_click_id`: at least one of the click ids).
pub const COVERAGE_FIELDS: [&str; 12] = [
    "client_id",
    "session_id",
    "user_id",
    "email",
    "phone",
    "gclid",
    "gbraid",
    "wbraid",
    "fbc",
    "fbp",
    "li_fat_id",
    "any_click_id",
];

/// The personal fields: hashed at ingest, stripped when consent for ad user data is denied.
pub const PERSONAL_FIELDS: [&str; 7] =
    ["email", "phone", "first_name", "last_name", "street", "gender", "date_of_birth"];

impl Identity {
    /// The personal fields it carries, by name, in `PERSONAL_FIELDS` order.
    pub fn personal_fields(&self) -> Vec<&'static str> {
        // Exhaustive on purpose: a field added to `Identity` must be classified here.
        #[rustfmt::skip]
        let Identity {
            email, phone, first_name, last_name, street, gender, date_of_birth,
            client_id: _, session_id: _, user_id: _, city: _, region: _, postal_code: _, country: _,
            gclid: _, gbraid: _, wbraid: _, fbp: _, fbc: _, li_fat_id: _, ip: _, user_agent: _,
            browser_event_id: _,
        } = self;
        [
            ("email", email),
            ("phone", phone),
            ("first_name", first_name),
            ("last_name", last_name),
            ("street", street),
            ("gender", gender),
            ("date_of_birth", date_of_birth),
        ]
        .into_iter()
        .filter_map(|(name, field)| field.is_some().then_some(name))
        .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentState {
    Granted,
    Denied,
}

/// Consent captured for the subject; `None` means not stated.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Consent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics: Option<ConsentState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad_user_data: Option<ConsentState>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ad_personalization: Option<ConsentState>,
}

/// The canonical event: what the ledger stores and every outbound payload is built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: EventId,
    pub kind: Kind,
    /// Which source handed it over (`api`, `stripe`, …).
    pub source: String,
    /// Business time: the only time sent to platforms.
    pub occurred_at: DateTime<Utc>,
    /// Processing time: when Surety committed it.
    pub received_at: DateTime<Utc>,
    pub subject: Subject,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<Item>,
    #[serde(default)]
    pub identity: Identity,
    #[serde(default)]
    pub consent: Consent,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Value>,
    /// Identity and consent fields filled from the identity bridge at ingest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joined: Vec<String>,
}

impl Event {
    /// SHA-256 over what the source said (not over `received_at` or what was joined), to tell a
    /// redelivery (same hash) from a conflicting restatement (different hash).
    pub fn content_hash(&self) -> String {
        /// The source's statement, borrowed: serialised straight into the hasher. Field order is
        /// fixed by this declaration and maps are ordered, so the bytes are canonical.
        #[derive(Serialize)]
        struct Content<'a> {
            event_id: &'a EventId,
            kind: &'a Kind,
            occurred_at: &'a DateTime<Utc>,
            subject: &'a Subject,
            value: &'a Option<f64>,
            currency: &'a Option<Currency>,
            items: &'a [Item],
            identity: &'a Identity,
            consent: &'a Consent,
            attributes: &'a BTreeMap<String, Value>,
        }
        struct Hasher(sha2::Sha256);
        impl std::io::Write for Hasher {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                sha2::Digest::update(&mut self.0, buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let content = Content {
            event_id: &self.event_id,
            kind: &self.kind,
            occurred_at: &self.occurred_at,
            subject: &self.subject,
            value: &self.value,
            currency: &self.currency,
            items: &self.items,
            identity: &self.identity,
            consent: &self.consent,
            attributes: &self.attributes,
        };
        let mut hasher = Hasher(<sha2::Sha256 as sha2::Digest>::new());
        // Writing to a hasher cannot fail, and these types always serialise.
        let _ = serde_json::to_writer(&mut hasher, &content);
        hex::encode(sha2::Digest::finalize(hasher.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_id_is_subject_then_kind() {
        let subject = Subject { kind: "order".into(), id: "1042".into() };
        let kind = Kind::parse("refund_completed").unwrap();
        assert_eq!(EventId::derive(&subject, &kind).as_str(), "order:1042:refund_completed");
    }

    #[test]
    fn event_id_rules() {
        assert!(EventId::parse("").is_err());
        assert!(EventId::parse(" x").is_err());
        assert!(EventId::parse("a\u{0}b").is_err());
        assert!(EventId::parse(&"x".repeat(257)).is_err());
        assert!(EventId::parse("re_3Mtw").is_ok());
    }

    #[test]
    fn kind_rules() {
        assert!(Kind::parse("order_paid").is_ok());
        assert!(Kind::parse("Order").is_err());
        assert!(Kind::parse("1x").is_err());
        assert!(Kind::parse("a-b").is_err());
    }

    /// `personal_fields` names exactly `PERSONAL_FIELDS`, by their serialised names, and only
    /// hashed fields. (A field added to `Identity` later must first be classified there: its
    /// destructuring is exhaustive, so it does not compile otherwise.)
    #[test]
    fn every_hashed_identity_field_is_a_personal_field() {
        let h = crate::core::pii::hash_name("x").unwrap();
        let full = Identity {
            email: Some(h.clone()),
            phone: Some(h.clone()),
            first_name: Some(h.clone()),
            last_name: Some(h.clone()),
            street: Some(h.clone()),
            gender: Some(h.clone()),
            date_of_birth: Some(h),
            ..Identity::default()
        };
        let json = serde_json::to_value(&full).unwrap();
        let mut hashed: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        hashed.sort_unstable();
        let mut listed = PERSONAL_FIELDS.to_vec();
        listed.sort_unstable();
        assert_eq!(hashed, listed);
        assert_eq!(full.personal_fields(), PERSONAL_FIELDS.to_vec());
        assert!(Identity { user_id: Some("u".into()), ..Identity::default() }.personal_fields().is_empty());
    }

    #[test]
    fn currency_is_uppercased() {
        assert_eq!(Currency::parse("eur").unwrap().as_str(), "EUR");
        assert!(Currency::parse("EURO").is_err());
    }

    #[test]
    fn a_currency_must_be_an_active_iso_4217_code() {
        assert!(Currency::parse("ZZZ").is_err());
        assert!(Currency::parse("XXX").is_err());
        assert!(Currency::parse("jpy").is_ok());
    }

    /// Each of these once made a second (and third) order of `INV-1042`.
    #[test]
    fn invisible_variants_of_an_id_are_refused_naming_the_code_point() {
        for (s, cp) in [
            ("INV-1042\u{200B}", "U+200B"),   // zero-width space
            ("\u{FEFF}INV-1042", "U+FEFF"),   // byte order mark
            ("INV\u{200D}-1042", "U+200D"),   // zero-width joiner
            ("INV-\u{202E}2401", "U+202E"),   // right-to-left override
            ("INV-\u{2066}1042", "U+2066"),   // left-to-right isolate
            ("INV-1042\u{2028}", "U+2028"),   // line separator
            ("INV-1042\u{2029}", "U+2029"),   // paragraph separator
            ("INV-\u{AD}1042", "U+00AD"),     // soft hyphen
            ("INV-1042\u{E0041}", "U+E0041"), // tag character
            ("INV-1042\u{FE0F}", "U+FE0F"),   // variation selector
            ("INV-1042\u{7}", "U+0007"),      // control
            ("INV-1042\u{85}", "U+0085"),     // C1 control (next line)
        ] {
            let e = EventId::parse(s).unwrap_err();
            assert_eq!(e.code, "invalid_characters", "{s:?}");
            assert!(e.message.contains(cp), "{s:?}: {}", e.message);
            assert!(!e.message.contains("INV"), "the value is not quoted");
            assert_eq!(Subject::parse("order".into(), s.into()).unwrap_err()[0].0, "id");
        }
    }

    #[test]
    fn visible_unicode_in_ids_is_fine() {
        assert!(EventId::parse("Bestellung-Übergröße-42").is_ok());
        assert!(EventId::parse("注文-1042").is_ok());
        assert!(Subject::parse("order".into(), "a b".into()).is_ok(), "inner spaces are visible");
    }

    #[test]
    fn subject_parts_follow_the_id_rule_and_a_type_has_no_colon() {
        let errs = Subject::parse("ord:er".into(), " 1".into()).unwrap_err();
        assert_eq!(
            errs.iter().map(|(n, e)| (*n, e.code)).collect::<Vec<_>>(),
            [("type", "invalid"), ("id", "invalid")]
        );
        let errs = Subject::parse(String::new(), "x".repeat(201)).unwrap_err();
        assert_eq!(
            errs.iter().map(|(n, e)| (*n, e.code)).collect::<Vec<_>>(),
            [("type", "required"), ("id", "too_long")]
        );
    }

    #[test]
    fn amounts_are_finite_magnitudes_within_the_bound() {
        assert_eq!(check_amount(59.9), Ok(59.9));
        assert_eq!(check_amount(0.0), Ok(0.0));
        assert_eq!(check_amount(MAX_AMOUNT), Ok(MAX_AMOUNT));
        for bad in [-100.0, -0.01, 1e18, MAX_AMOUNT * 1.000_001, f64::INFINITY, f64::NAN] {
            assert!(check_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(check_amount(-100.0).unwrap_err().0, "out_of_range");
        assert!(check_quantity(i64::MAX).is_err());
        assert!(check_quantity(-1).is_err());
        assert_eq!(check_quantity(MAX_QUANTITY), Ok(MAX_QUANTITY));
    }
}
