//! Meta's documented rules, checked on the very event object that would be sent, so planning
//! refuses what would make Meta reject a whole request (one invalid event sinks its batch).
//!
//! Rules: developers.facebook.com/docs/marketing-api/conversions-api/parameters — server-event
//! (required fields, `action_source` values, `website` needs `event_source_url` and
//! `client_user_agent`, `app` needs `app_data`), customer-information-parameters (which keys are
//! hashed, which never are), custom-data (`value` with `currency`; both required for
//! `Purchase`); …/data-processing-options. docs/platforms.md §Meta.

use serde_json::{Map, Value};

use super::payload::matchable;
use crate::platforms::meta::config::ACTION_SOURCES;

/// `user_data` keys that must be SHA-256 hex.
pub const HASHED_KEYS: [&str; 10] = ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"];

/// `user_data` keys that must never be hashed.
pub const PLAIN_KEYS: [&str; 4] = ["client_ip_address", "client_user_agent", "fbc", "fbp"];

/// An `event_time` at or above this is in milliseconds (year 5138 in seconds), not seconds.
const SECONDS_LIMIT: i64 = 100_000_000_000;

/// Every rule the event object breaks, as `field.path: what is wrong`.
pub fn check_event(event: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(event) = event.as_object() else {
        return vec!["event: must be an object".to_owned()];
    };
    if event.get("event_name").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
        out.push("event_name: required".to_owned());
    }
    match event.get("event_time").and_then(Value::as_i64) {
        Some(t) if t > 0 && t < SECONDS_LIMIT => {}
        Some(_) => out.push("event_time: must be a Unix time in seconds".to_owned()),
        None => out.push("event_time: required (Unix seconds)".to_owned()),
    }
    if let Some(id) = event.get("event_id") {
        if id.as_str().is_none_or(|s| s.trim().is_empty()) {
            out.push("event_id: must be a non-empty string".to_owned());
        }
    }
    let empty = Map::new();
    let user_data = match event.get("user_data") {
        Some(Value::Object(u)) => u,
        Some(_) => {
            out.push("user_data: must be an object".to_owned());
            &empty
        }
        None => {
            out.push("user_data: required".to_owned());
            &empty
        }
    };
    check_action_source(event, user_data, &mut out);
    check_user_data(user_data, &mut out);
    if let Some(custom) = event.get("custom_data") {
        let name = event.get("event_name").and_then(Value::as_str).unwrap_or_default();
        match custom.as_object() {
            Some(c) => check_custom_data(name, c, &mut out),
            None => out.push("custom_data: must be an object".to_owned()),
        }
    } else if event.get("event_name").and_then(Value::as_str) == Some("Purchase") {
        out.push("custom_data.value and custom_data.currency: required for Purchase".to_owned());
    }
    if let Some(options) = event.get("data_processing_options") {
        let ok = options.as_array().is_some_and(|o| o.iter().all(|v| v.as_str() == Some("LDU")));
        if !ok {
            out.push("data_processing_options: must be [] or [\"LDU\"]".to_owned());
        }
    }
    out
}

fn check_action_source(event: &Map<String, Value>, user_data: &Map<String, Value>, out: &mut Vec<String>) {
    match event.get("action_source").and_then(Value::as_str) {
        None => out.push("action_source: required".to_owned()),
        Some(s) if !ACTION_SOURCES.contains(&s) => {
            out.push(format!("action_source: '{s}' is not one of {}", ACTION_SOURCES.join(", ")))
        }
        Some("website") => {
            let url = event.get("event_source_url").and_then(Value::as_str);
            let absolute =
                url.and_then(|u| url::Url::parse(u).ok()).is_some_and(|u| ["http", "https"].contains(&u.scheme()));
            if !absolute {
                out.push(
                    "event_source_url: required for action_source website, as an absolute http(s) URL (the \
                     event's event_source_url attribute)"
                        .to_owned(),
                );
            }
            if user_data.get("client_user_agent").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
                out.push("user_data.client_user_agent: required for action_source website".to_owned());
            }
        }
        Some("app") if !event.contains_key("app_data") => out.push(
            "app_data: required for action_source app (Surety sends none: route app events elsewhere)".to_owned(),
        ),
        Some(_) => {}
    }
}

fn check_user_data(user_data: &Map<String, Value>, out: &mut Vec<String>) {
    if !matchable(user_data) {
        out.push(
            "user_data: no customer information Meta can match on (em, ph, external_id, fbp, fbc, or \
             client_ip_address with client_user_agent) — after leaving out what consent forbids, if it did"
                .to_owned(),
        );
    }
    for key in HASHED_KEYS {
        if let Some(v) = user_data.get(key) {
            if !strings(v).is_some_and(|s| !s.is_empty() && s.iter().all(|s| is_sha256_hex(s))) {
                out.push(format!("user_data.{key}: must be SHA-256 hashed (64 lowercase hex characters)"));
            }
        }
    }
    if let Some(v) = user_data.get("external_id") {
        if !strings(v).is_some_and(|s| !s.is_empty() && s.iter().all(|s| !s.is_empty())) {
            out.push("user_data.external_id: must be a non-empty string or list of strings".to_owned());
        }
    }
    for key in PLAIN_KEYS {
        match user_data.get(key).map(Value::as_str) {
            None => {}
            Some(Some(s)) if is_sha256_hex(s) => out.push(format!("user_data.{key}: must not be hashed")),
            Some(Some(s)) if key == "client_ip_address" && s.parse::<std::net::IpAddr>().is_err() => {
                out.push("user_data.client_ip_address: must be an IPv4 or IPv6 address".to_owned())
            }
            Some(Some(_)) => {}
            Some(None) => out.push(format!("user_data.{key}: must be a string")),
        }
    }
}

fn check_custom_data(event_name: &str, c: &Map<String, Value>, out: &mut Vec<String>) {
    match c.get("value") {
        Some(v) if !v.as_f64().is_some_and(f64::is_finite) => {
            out.push("custom_data.value: must be a number".to_owned())
        }
        Some(_) if !c.contains_key("currency") => out.push("custom_data.currency: required with value".to_owned()),
        None if event_name == "Purchase" => out.push("custom_data.value: required for Purchase".to_owned()),
        _ => {}
    }
    match c.get("currency") {
        Some(v) => {
            let ok = v.as_str().is_some_and(|s| s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic()));
            if !ok {
                out.push("custom_data.currency: must be a three-letter ISO 4217 code".to_owned());
            }
        }
        None if event_name == "Purchase" => out.push("custom_data.currency: required for Purchase".to_owned()),
        None => {}
    }
    if let Some(contents) = c.get("contents") {
        let Some(contents) = contents.as_array() else {
            out.push("custom_data.contents: must be an array".to_owned());
            return;
        };
        for (i, item) in contents.iter().enumerate() {
            let at = format!("custom_data.contents[{i}]");
            let Some(item) = item.as_object() else {
                out.push(format!("{at}: must be an object"));
                continue;
            };
            if item.get("id").and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
                out.push(format!("{at}.id: required"));
            }
            if item.get("quantity").is_some_and(|q| !q.is_i64()) {
                out.push(format!("{at}.quantity: must be an integer"));
            }
            if item.get("item_price").is_some_and(|p| !p.is_number()) {
                out.push(format!("{at}.item_price: must be a number"));
            }
        }
    }
}

/// A string, or an array of strings.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}
