//! LinkedIn's documented rules, checked on the very element that would be sent, so planning
//! rejects what LinkedIn would refuse (learn.microsoft.com/linkedin/marketing/integrations/
//! ads-reporting/conversions-api; docs/platforms.md §LinkedIn).
//!
//! The time window is planning's own check (`Rules::window`), not repeated here.

use serde_json::{Map, Value};

use super::payload::ID_TYPES;
use crate::platforms::linkedin::config::CONVERSION_URN_PREFIX;

/// Every rule an element breaks, as `field.path: what is wrong`.
pub fn check_element(element: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(e) = element.as_object() else {
        return vec!["element: must be an object".to_owned()];
    };
    let urn_ok = e
        .get("conversion")
        .and_then(Value::as_str)
        .and_then(|c| c.strip_prefix(CONVERSION_URN_PREFIX))
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
    if !urn_ok {
        out.push(format!("conversion: must be a conversion rule URN {CONVERSION_URN_PREFIX}ID"));
    }
    match e.get("conversionHappenedAt").and_then(Value::as_i64) {
        Some(ms) if ms > 0 => {}
        _ => out.push("conversionHappenedAt: must be a positive number of milliseconds since the epoch".to_owned()),
    }
    if let Some(value) = e.get("conversionValue") {
        check_value(value, &mut out);
    }
    match e.get("eventId") {
        Some(Value::String(id)) if !id.trim().is_empty() => {}
        _ => out.push("eventId: required for deduplication, and never empty".to_owned()),
    }
    let ids = e.get("user").and_then(|u| u.get("userIds")).and_then(Value::as_array);
    match ids {
        Some(ids) if !ids.is_empty() => {
            for (i, id) in ids.iter().enumerate() {
                check_user_id(&format!("user.userIds[{i}]"), id, &mut out);
            }
        }
        _ => out.push(
            "user.userIds: at least one user id is required (a hashed email or li_fat_id, which consent may have \
             stripped)"
                .to_owned(),
        ),
    }
    out
}

fn check_value(value: &Value, out: &mut Vec<String>) {
    let Some(v) = value.as_object() else {
        out.push("conversionValue: must be an object".to_owned());
        return;
    };
    let currency_ok = v
        .get("currencyCode")
        .and_then(Value::as_str)
        .is_some_and(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()));
    if !currency_ok {
        out.push("conversionValue.currencyCode: required with a value, a three-letter ISO 4217 code".to_owned());
    }
    match v.get("amount").and_then(Value::as_str) {
        Some(a) if a.starts_with('-') => {
            out.push("conversionValue.amount: must not be negative (LinkedIn has no refunds)".to_owned())
        }
        Some(a) if is_decimal(a) => {}
        _ => out.push("conversionValue.amount: must be a decimal string such as \"59.90\"".to_owned()),
    }
}

/// Digits, optionally a point and more digits: `59.90`, `1500`, `0.0001`.
pub fn is_decimal(s: &str) -> bool {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, "0"));
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

fn check_user_id(path: &str, id: &Value, out: &mut Vec<String>) {
    let empty = Map::new();
    let id = id.as_object().unwrap_or(&empty);
    let id_type = id.get("idType").and_then(Value::as_str).unwrap_or_default();
    if !ID_TYPES.contains(&id_type) {
        out.push(format!("{path}.idType: '{id_type}' is not one of {}", ID_TYPES.join(", ")));
    }
    let value = id.get("idValue").and_then(Value::as_str).unwrap_or_default();
    if value.trim().is_empty() {
        out.push(format!("{path}.idValue: required"));
    } else if id_type == "SHA256_EMAIL"
        && !(value.len() == 64 && value.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        out.push(format!("{path}.idValue: a SHA256_EMAIL is 64 lowercase hex characters"));
    }
}
