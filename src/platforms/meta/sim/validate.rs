//! The simulated Conversions API's checks of one request's events, by Meta's documented rules
//! (developers.facebook.com/docs/marketing-api/conversions-api — using-the-api, parameters/
//! server-event, customer-information-parameters, custom-data; docs/platforms.md §Meta). Written apart
//! from the adapter's checks on purpose: a rule the adapter forgets must still show here.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Most events in one request.
pub const MAX_EVENTS: usize = 1000;
/// How old an event Meta takes.
pub const WINDOW_SECS: i64 = 7 * 24 * 3600;
/// How far ahead of Meta's clock an `event_time` may be (clock skew). Not documented as a number.
pub const FUTURE_SLACK_SECS: i64 = 300;

const ACTION_SOURCES: [&str; 9] = [
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
];
/// Must be SHA-256, lowercase hex: Meta refuses unhashed contact data.
const MUST_BE_HASHED: [&str; 10] = ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"];
/// Must be sent as they are.
const NEVER_HASHED: [&str; 4] = ["client_ip_address", "client_user_agent", "fbc", "fbp"];

/// What is wrong with an event: the field path (`data[3].user_data.em`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// Every problem of the event at `data[index]`, at platform time `now`.
pub fn check_event(index: usize, event: &Value, now: DateTime<Utc>) -> Vec<Problem> {
    let at = format!("data[{index}]");
    let mut out = Vec::new();
    let mut add = |field: &str, message: &str| {
        let field = if field.is_empty() { at.clone() } else { format!("{at}.{field}") };
        out.push(Problem { field, message: message.to_owned() });
    };
    let Some(e) = event.as_object() else {
        add("", "An event must be an object.");
        return out;
    };
    if e.get("event_name").and_then(Value::as_str).is_none_or(str::is_empty) {
        add("event_name", "The parameter event_name is required.");
    }
    match e.get("event_time").and_then(Value::as_i64) {
        None => add("event_time", "The parameter event_time is required and must be a Unix timestamp in seconds."),
        Some(t) if t < now.timestamp() - WINDOW_SECS => add(
            "event_time",
            "The timestamp for this event is too far in the past. Events need to be sent from your server within \
             7 days of when they occurred.",
        ),
        Some(t) if t > now.timestamp() + FUTURE_SLACK_SECS => {
            add("event_time", "The timestamp for this event is in the future.")
        }
        Some(_) => {}
    }
    if e.get("event_id").is_some_and(|v| !v.is_string()) {
        add("event_id", "event_id must be a string.");
    }
    let empty = Map::new();
    let user_data = match e.get("user_data") {
        Some(Value::Object(u)) if !u.is_empty() => u,
        _ => {
            add("user_data", "The parameter user_data is required and must hold customer information.");
            &empty
        }
    };
    match e.get("action_source").and_then(Value::as_str) {
        None => add("action_source", "The parameter action_source is required."),
        Some(s) if !ACTION_SOURCES.contains(&s) => add("action_source", "Invalid action_source value."),
        Some("website") => {
            let url_ok = e
                .get("event_source_url")
                .and_then(Value::as_str)
                .and_then(|u| url::Url::parse(u).ok())
                .is_some_and(|u| u.scheme() == "http" || u.scheme() == "https");
            if !url_ok {
                add("event_source_url", "event_source_url is required for website events.");
            }
            if user_data.get("client_user_agent").and_then(Value::as_str).is_none_or(str::is_empty) {
                add("user_data.client_user_agent", "client_user_agent is required for website events.");
            }
        }
        Some("app") if !e.contains_key("app_data") => add("app_data", "app_data is required for app events."),
        Some(_) => {}
    }
    for (key, value) in user_data {
        let field = format!("user_data.{key}");
        if MUST_BE_HASHED.contains(&key.as_str()) {
            let values = match value {
                Value::String(s) => vec![Some(s.as_str())],
                Value::Array(a) if !a.is_empty() => a.iter().map(Value::as_str).collect(),
                _ => vec![None],
            };
            if !values.iter().all(|v| v.is_some_and(is_sha256)) {
                add(&field, "This field must be hashed with SHA-256 (lowercase hex). Unhashed data is refused.");
            }
        } else if NEVER_HASHED.contains(&key.as_str()) {
            match value.as_str() {
                None => add(&field, "Must be a string."),
                Some(s) if is_sha256(s) => add(&field, "This field must not be hashed."),
                Some(s) if key == "client_ip_address" && s.parse::<IpAddr>().is_err() => {
                    add(&field, "Invalid IP address.")
                }
                Some(_) => {}
            }
        } else if key == "external_id" {
            let ok = match value {
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty() && a.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())),
                _ => false,
            };
            if !ok {
                add(&field, "external_id must be a string or a list of strings.");
            }
        }
    }
    let name = e.get("event_name").and_then(Value::as_str).unwrap_or_default();
    match e.get("custom_data") {
        None if name == "Purchase" => add("custom_data", "value and currency are required for Purchase events."),
        None => {}
        Some(Value::Object(c)) => {
            let value = c.get("value");
            if value.is_some_and(|v| !v.is_number()) {
                add("custom_data.value", "value must be a number.");
            }
            let currency = c.get("currency");
            if let Some(cur) = currency {
                if !cur.as_str().is_some_and(|s| s.len() == 3 && s.chars().all(|c| c.is_ascii_alphabetic())) {
                    add("custom_data.currency", "currency must be a 3-letter ISO 4217 code.");
                }
            }
            if name == "Purchase" && (value.is_none() || currency.is_none()) {
                add("custom_data", "value and currency are required for Purchase events.");
            } else if value.is_some() && currency.is_none() {
                add("custom_data.currency", "currency is required when value is set.");
            }
            if let Some(contents) = c.get("contents") {
                let ok = contents.as_array().is_some_and(|a| {
                    a.iter().all(|i| i.get("id").and_then(Value::as_str).is_some_and(|s| !s.is_empty()))
                });
                if !ok {
                    add("custom_data.contents", "Each content needs an id.");
                }
            }
        }
        Some(_) => add("custom_data", "custom_data must be an object."),
    }
    if let Some(options) = e.get("data_processing_options") {
        if !options.as_array().is_some_and(|a| a.iter().all(|o| o.as_str() == Some("LDU"))) {
            add("data_processing_options", "data_processing_options must be an array holding \"LDU\" or nothing.");
        }
    }
    for key in ["data_processing_options_country", "data_processing_options_state"] {
        if e.get(key).is_some_and(|v| !v.is_i64()) {
            add(key, "Must be an integer.");
        }
    }
    out
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
