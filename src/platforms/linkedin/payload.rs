//! LinkedIn conversion elements, built only from the stored event and its route, so every resend
//! carries the same `eventId`, the same time and the same bytes (G2, G5).
//!
//! Shape: learn.microsoft.com/linkedin/marketing/integrations/ads-reporting/conversions-api
//! ("Streaming conversion events"); docs/platforms.md §LinkedIn.
//!
//! What is sent, and why:
//! - `conversionHappenedAt`: event time in milliseconds since the epoch.
//! - `conversionValue`: only when the event has a value; `amount` is a decimal string (see
//!   [`decimal_amount`]), `currencyCode` the event's currency.
//! - `eventId`: see [`event_id`].
//! - `user.userIds`: `SHA256_EMAIL` (the Meta-scheme hash: trimmed, lowercased — LinkedIn's rule,
//!   ADR 0004), `LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID` (`li_fat_id`), and `PLAINTEXT_IP_ADDRESS`
//!   as a supplement. All three are left out when consent strips personal data: the click id and
//!   the address point at a person as much as the email does.
//! - `user.userInfo` is never sent. It takes plain-text names, and Surety holds names only as
//!   hashes (G7); without `firstName`/`lastName` a `userInfo` (say, `countryCode` alone) is
//!   incomplete — our reading of the docs, which list both names as required in it.

use serde_json::{json, Map, Value};

use crate::core::pii::sha256_hex;
use crate::core::{Event, Route};
use crate::platforms::linkedin::config::conversion_urn;

/// `idType` values LinkedIn documents.
pub const ID_TYPES: [&str; 7] = [
    "SHA256_EMAIL",
    "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
    "ACXIOM_ID",
    "ORACLE_MOAT_ID",
    "PLAINTEXT_IP_ADDRESS",
    "SHA256_IP_ADDRESS",
    "GOOGLE_AID",
];

/// One delivery's element of a `BATCH_CREATE` body.
#[derive(Clone, Debug)]
pub struct ConversionElement {
    /// The element, serialised once: these bytes go into every body it is part of.
    pub element_json: String,
    /// SHA-256 of `element_json`: the delivery's payload hash, equal on every resend.
    pub element_sha256: String,
}

impl ConversionElement {
    pub fn new(event: &Event, route: &Route, strip_personal: bool) -> Self {
        let element_json = element(event, route, strip_personal).to_string();
        let element_sha256 = sha256_hex(element_json.as_bytes());
        Self { element_json, element_sha256 }
    }
}

/// The `eventId` LinkedIn dedupes on. For a kind the Insight Tag also records, the tag's own id
/// (`identity.browser_event_id`) so that LinkedIn keeps one of the two; otherwise — and for a
/// browser-tracked kind whose browser id was not captured — Surety's `event_id`, which a shop
/// can also give the Insight Tag (`order:1042:order_paid`) to share it without capturing anything.
pub fn event_id<'a>(event: &'a Event, route: &Route) -> &'a str {
    let browser = event.identity.browser_event_id.as_deref().filter(|id| !id.trim().is_empty());
    match browser {
        Some(id) if route.browser_tracked => id,
        _ => event.event_id.as_str(),
    }
}

/// The conversion element for one event. A route whose `event` is no conversion rule keeps its
/// text, so that validation names it rather than a guess being sent.
pub fn element(event: &Event, route: &Route, strip_personal: bool) -> Value {
    let mut e = Map::new();
    e.insert("conversion".into(), conversion_urn(&route.event).unwrap_or_else(|_| route.event.clone()).into());
    e.insert("conversionHappenedAt".into(), event.occurred_at.timestamp_millis().into());
    if let Some(value) = event.value {
        let mut v = Map::new();
        // A non-finite value cannot come from JSON; if it ever did, validation reports the gap.
        if let Some(amount) = decimal_amount(value) {
            v.insert("amount".into(), amount.into());
        }
        if let Some(currency) = &event.currency {
            v.insert("currencyCode".into(), currency.as_str().into());
        }
        e.insert("conversionValue".into(), Value::Object(v));
    }
    e.insert("eventId".into(), event_id(event, route).into());
    e.insert("user".into(), json!({ "userIds": user_ids(event, strip_personal) }));
    Value::Object(e)
}

fn user_ids(event: &Event, strip_personal: bool) -> Vec<Value> {
    if strip_personal {
        return Vec::new();
    }
    let identity = &event.identity;
    let mut ids = Vec::new();
    let mut push = |id_type: &str, value: &str| ids.push(json!({"idType": id_type, "idValue": value}));
    if let Some(email) = &identity.email {
        push("SHA256_EMAIL", email.meta.as_str());
    }
    if let Some(li_fat_id) = identity.li_fat_id.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        push("LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", li_fat_id);
    }
    if let Some(ip) = identity.ip.as_deref().and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok()) {
        push("PLAINTEXT_IP_ADDRESS", &ip.to_string());
    }
    ids
}

/// A value as LinkedIn's decimal-string `amount`: plain digits (never exponent notation), at
/// most 15 significant digits — every decimal of up to 15 digits survives the trip through
/// `f64`, so this is exactly the number the source wrote, and arithmetic noise such as
/// `0.30000000000000004` is rounded away — with at least two decimals, as money is written:
/// `59.9` → `"59.90"`, `1500` → `"1500.00"`, `0.0001` → `"0.0001"`. `None` for NaN and infinities.
pub fn decimal_amount(value: f64) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    // `d.dddddddddddddde±x`: 15 significant digits, correctly rounded.
    let scientific = format!("{:.14e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e')?;
    let exponent: i32 = exponent.parse().ok()?;
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // digits × 10^(exponent - 14): the decimal point falls after `exponent + 1` digits.
    let point = exponent + 1;
    let (whole, fraction) = if point <= 0 {
        ("0".to_owned(), format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)))
    } else if point as usize >= digits.len() {
        (format!("{digits}{}", "0".repeat(point as usize - digits.len())), String::new())
    } else {
        let (w, f) = digits.split_at(point as usize);
        (w.to_owned(), f.to_owned())
    };
    let mut fraction = fraction.trim_end_matches('0').to_owned();
    while fraction.len() < 2 {
        fraction.push('0');
    }
    let zero = whole.bytes().all(|b| b == b'0') && fraction.bytes().all(|b| b == b'0');
    let sign = if value < 0.0 && !zero { "-" } else { "" };
    Some(format!("{sign}{whole}.{fraction}"))
}

/// The `BATCH_CREATE` body: `{"elements": [...]}` with the elements in order.
pub fn batch_body(parts: &[&ConversionElement]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.element_json.len() + 1).sum();
    let mut body = String::with_capacity(len + 16);
    body.push_str("{\"elements\":[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&p.element_json);
    }
    body.push_str("]}");
    body.into_bytes()
}
