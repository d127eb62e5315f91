//! The canonical business event as stored in the ledger: parsed, normalised, personal fields hashed.
//!
//! Everything here is already validated; the raw request shapes live in `crate::ingest`.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

mod id;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::id::{check_id, invisible_char, Currency, EventId, IdError, Kind, Subject};
use super::pii::Hashed;

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
mod tests;
