//! The Data Manager API's documented rules, checked on the very event object that would be sent,
//! so planning rejects what Google would refuse — and, since Google fails a whole request for
//! one bad event (fast-fail), so one bad event never reaches a shared request.
//!
//! Rules: the protos `google/ads/datamanager/v1/{event,user_data,consent,ingestion_service}.proto`,
//! developers.google.com/data-manager/api/devguides/concepts/formatting and …/limits.
//! docs/platforms.md §Google Ads.

use chrono::{DateTime, Duration};
use serde_json::{Map, Value};

use super::payload::{self, IngestEvent, Shape};
use crate::core::{Event, Route};
use crate::platforms::google_ads::config::conversion_action_problem;

/// Most events per request.
pub const MAX_EVENTS: usize = 2000;
/// Most destinations (conversion actions) per request.
pub const MAX_DESTINATIONS: usize = 10;
/// Most user identifiers per event.
pub const MAX_USER_IDENTIFIERS: usize = 10;

const EVENT_SOURCES: [&str; 5] = ["WEB", "APP", "IN_STORE", "PHONE", "OTHER"];
const CONSENT_VALUES: [&str; 2] = ["CONSENT_GRANTED", "CONSENT_DENIED"];

/// Every rule a delivery breaks: its route, its adjustment settings, and its event object.
pub fn check_delivery(event: &Event, route: &Route, strip_personal: bool, shape: &Shape) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = conversion_action_problem(&route.event) {
        out.push(format!("route.event: {p}"));
    }
    if shape.is_adjustment(event) {
        check_adjustment(event, shape, &mut out);
    }
    let prepared = IngestEvent::new(event, route, strip_personal, shape);
    match serde_json::from_str::<Value>(&prepared.event_json) {
        Ok(Value::Object(o)) => check_event("event", &o, &mut out),
        _ => out.push("event: could not be serialised".to_owned()),
    }
    if strip_personal && out.iter().any(|m| m.starts_with("event: needs a click id")) {
        out.push("event: the user identifiers were left out because ad_user_data consent is not granted".to_owned());
    }
    out
}

fn check_adjustment(event: &Event, shape: &Shape, out: &mut Vec<String>) {
    let restated = payload::restated_value(event);
    if event.attributes.contains_key(payload::RESTATED_VALUE) && restated.is_none() {
        out.push(format!("attributes.{}: must be a number", payload::RESTATED_VALUE));
    }
    // Without `restated_value` the value comes from the ledger at send time; only then is it
    // known whether this is a full retraction (which `retraction = "skip"` refuses).
    match payload::conversion_occurred_at(event) {
        Err(e) => out.push(e),
        Ok(Some(conversion)) => {
            let days = shape.adjustments.window_days;
            if conversion > event.occurred_at {
                out.push(format!("attributes.{}: after the adjustment itself", payload::CONVERSION_OCCURRED_AT));
            } else if event.occurred_at - conversion > Duration::days(i64::from(days)) {
                out.push(format!(
                    "occurred_at: more than {days} days after the conversion it adjusts (adjustments.window_days)"
                ));
            }
        }
        Ok(None) => {}
    }
}

/// Every rule an event object breaks, with `path` naming it in the messages.
pub fn check_event(path: &str, e: &Map<String, Value>, out: &mut Vec<String>) {
    match e.get("destinationReferences").and_then(Value::as_array) {
        Some(refs) if !refs.is_empty() => {
            if refs.iter().any(|r| r.as_str().is_none_or(|s| s.is_empty())) {
                out.push(format!("{path}.destinationReferences: must be non-empty strings"));
            }
        }
        _ => out.push(format!("{path}.destinationReferences: required")),
    }
    match e.get("transactionId").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() && !t.chars().any(char::is_control) => {}
        _ => out.push(format!("{path}.transactionId: required, non-empty, without control characters")),
    }
    match e.get("eventTimestamp").and_then(Value::as_str) {
        Some(t) if DateTime::parse_from_rfc3339(t).is_ok() => {}
        _ => out.push(format!("{path}.eventTimestamp: required, an RFC 3339 time")),
    }
    if let Some(t) = e.get("lastUpdatedTimestamp") {
        if t.as_str().is_none_or(|t| DateTime::parse_from_rfc3339(t).is_err()) {
            out.push(format!("{path}.lastUpdatedTimestamp: must be an RFC 3339 time"));
        }
    }
    match e.get("eventSource").and_then(Value::as_str) {
        Some(s) if EVENT_SOURCES.contains(&s) => {}
        _ => out
            .push(format!("{path}.eventSource: required for offline conversions: one of {}", EVENT_SOURCES.join(", "))),
    }
    check_money(path, e, out);
    let click_ids = check_ad_identifiers(path, e.get("adIdentifiers"), out);
    let user_ids = check_user_data(path, e.get("userData"), out);
    if click_ids == 0 && user_ids == 0 {
        out.push(format!(
            "{path}: needs a click id (gclid, gbraid, wbraid) or a user identifier (email, phone, address)"
        ));
    }
    if let Some(consent) = e.get("consent") {
        match consent.as_object() {
            Some(c) => {
                for (key, value) in c {
                    if !["adUserData", "adPersonalization"].contains(&key.as_str()) {
                        out.push(format!("{path}.consent.{key}: not a consent field"));
                    } else if value.as_str().is_none_or(|v| !CONSENT_VALUES.contains(&v)) {
                        out.push(format!("{path}.consent.{key}: must be CONSENT_GRANTED or CONSENT_DENIED"));
                    }
                }
            }
            None => out.push(format!("{path}.consent: must be an object")),
        }
    }
}

fn check_money(path: &str, e: &Map<String, Value>, out: &mut Vec<String>) {
    if let Some(v) = e.get("conversionValue") {
        match v.as_f64() {
            Some(v) if v.is_finite() && v >= 0.0 => {}
            _ => out.push(format!("{path}.conversionValue: must be a number, zero or more")),
        }
        if !e.contains_key("currency") {
            out.push(format!("{path}.currency: required with conversionValue"));
        }
    }
    if let Some(c) = e.get("currency") {
        if c.as_str().is_none_or(|c| c.len() != 3 || !c.chars().all(|c| c.is_ascii_uppercase())) {
            out.push(format!("{path}.currency: must be a three-letter ISO 4217 code such as EUR"));
        }
    }
}

/// Checks `adIdentifiers`; returns how many click ids it holds.
fn check_ad_identifiers(path: &str, ids: Option<&Value>, out: &mut Vec<String>) -> usize {
    let Some(ids) = ids else { return 0 };
    let Some(ids) = ids.as_object() else {
        out.push(format!("{path}.adIdentifiers: must be an object"));
        return 0;
    };
    let mut count = 0;
    for key in ["gclid", "gbraid", "wbraid"] {
        if let Some(v) = ids.get(key) {
            match v.as_str() {
                Some(s) if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control()) => count += 1,
                _ => out.push(format!("{path}.adIdentifiers.{key}: must be a non-empty click id without spaces")),
            }
        }
    }
    if ids.contains_key("gbraid") && ids.contains_key("wbraid") {
        out.push(format!(
            "{path}.adIdentifiers: gbraid and wbraid are both set; Google takes one, and which click it was cannot be told"
        ));
    }
    count
}

/// Checks `userData`; returns how many user identifiers it holds.
fn check_user_data(path: &str, data: Option<&Value>, out: &mut Vec<String>) -> usize {
    let Some(data) = data else { return 0 };
    let Some(list) = data.get("userIdentifiers").and_then(Value::as_array) else {
        out.push(format!("{path}.userData.userIdentifiers: required with userData"));
        return 0;
    };
    if list.is_empty() {
        out.push(format!("{path}.userData.userIdentifiers: at least one identifier"));
    }
    if list.len() > MAX_USER_IDENTIFIERS {
        out.push(format!(
            "{path}.userData.userIdentifiers: at most {MAX_USER_IDENTIFIERS} identifiers (has {})",
            list.len()
        ));
    }
    for (i, id) in list.iter().enumerate() {
        let at = format!("{path}.userData.userIdentifiers[{i}]");
        let Some(id) = id.as_object().filter(|o| o.len() == 1) else {
            out.push(format!("{at}: exactly one of emailAddress, phoneNumber, address"));
            continue;
        };
        for (key, value) in id {
            match key.as_str() {
                "emailAddress" | "phoneNumber" => check_hex(&format!("{at}.{key}"), value, out),
                "address" => check_address(&format!("{at}.address"), value, out),
                other => out.push(format!("{at}.{other}: not a user identifier")),
            }
        }
    }
    list.len()
}

fn check_address(at: &str, value: &Value, out: &mut Vec<String>) {
    let Some(a) = value.as_object() else {
        out.push(format!("{at}: must be an object"));
        return;
    };
    for key in ["givenName", "familyName"] {
        match a.get(key) {
            Some(v) => check_hex(&format!("{at}.{key}"), v, out),
            None => out.push(format!("{at}.{key}: required")),
        }
    }
    match a.get("regionCode").and_then(Value::as_str) {
        Some(r) if r.len() == 2 && r.chars().all(|c| c.is_ascii_uppercase()) => {}
        _ => out.push(format!("{at}.regionCode: required, an ISO 3166-1 alpha-2 code such as DE")),
    }
    match a.get("postalCode").and_then(Value::as_str) {
        Some(p) if !p.trim().is_empty() => {}
        _ => out.push(format!("{at}.postalCode: required")),
    }
}

/// With `encoding: HEX`, a hashed identifier is a SHA-256 digest as 64 hex characters.
fn check_hex(at: &str, value: &Value, out: &mut Vec<String>) {
    let ok = value.as_str().is_some_and(|s| s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        out.push(format!("{at}: must be a SHA-256 digest in hex (64 characters)"));
    }
}

/// Every rule a whole request body breaks (limits, destinations, encoding), events included.
pub fn check_body(body: &[u8]) -> Vec<String> {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return vec!["body: not a JSON object".to_owned()];
    };
    let mut out = Vec::new();
    let destinations = request.get("destinations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if destinations.is_empty() || destinations.len() > MAX_DESTINATIONS {
        out.push(format!("destinations: 1 to {MAX_DESTINATIONS} per request (has {})", destinations.len()));
    }
    let events = request.get("events").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if events.is_empty() || events.len() > MAX_EVENTS {
        out.push(format!("events: 1 to {MAX_EVENTS} per request (has {})", events.len()));
    }
    let with_user_data = events.iter().any(|e| e.get("userData").is_some());
    if with_user_data && request.get("encoding").and_then(Value::as_str) != Some("HEX") {
        out.push("encoding: HEX is required with userData".to_owned());
    }
    for (i, e) in events.iter().enumerate() {
        match e.as_object() {
            Some(e) => check_event(&format!("events[{i}]"), e, &mut out),
            None => out.push(format!("events[{i}]: must be an object")),
        }
    }
    out
}
