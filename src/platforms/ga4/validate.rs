//! GA4's documented rules, checked on the very body that would be sent, so planning can reject
//! what GA4 would silently drop or mangle behind its unconditional 2xx.
//!
//! Rules: developers.google.com/analytics/devguides/collection/protocol/ga4/reference (limits,
//! reserved names), …/ga4/sending-events, …/ga4/validating-events;
//! support.google.com/analytics/answer/9267744 (collection limits). docs/platforms.md §GA4.

use serde_json::{Map, Value};

use super::payload::{is_ecommerce, MAX_BODY_BYTES};

pub const MAX_EVENTS: usize = 25;
pub const MAX_PARAMS: usize = 25;
pub const MAX_NAME_CHARS: usize = 40;
pub const MAX_PARAM_VALUE_CHARS: usize = 100;
pub const MAX_USER_ID_CHARS: usize = 256;
/// The pages disagree (10 vs 27); 10 is safe.
pub const MAX_CUSTOM_ITEM_PARAMS: usize = 10;

/// Event names GA4 keeps for itself, web-stream extras included.
pub const RESERVED_EVENT_NAMES: &[&str] = &[
    "ad_activeview",
    "ad_click",
    "ad_exposure",
    "ad_query",
    "ad_reward",
    "adunit_exposure",
    "app_clear_data",
    "app_exception",
    "app_install",
    "app_remove",
    "app_store_refund",
    "app_update",
    "app_upgrade",
    "dynamic_link_app_open",
    "dynamic_link_app_update",
    "dynamic_link_first_open",
    "error",
    "firebase_campaign",
    "firebase_in_app_message_action",
    "firebase_in_app_message_dismiss",
    "firebase_in_app_message_impression",
    "first_open",
    "first_visit",
    "notification_dismiss",
    "notification_foreground",
    "notification_open",
    "notification_receive",
    "notification_send",
    "os_update",
    "session_start",
    "user_engagement",
    // Web streams only.
    "ad_impression",
    "in_app_purchase",
    "screen_view",
];

pub const RESERVED_EVENT_PREFIXES: &[&str] = &["_", "firebase_", "ga_", "google_"];
pub const RESERVED_PARAM_PREFIXES: &[&str] = &["_", "firebase_", "ga_", "google_", "gtag."];
pub const RESERVED_PARAM_NAMES: &[&str] = &["firebase_conversion"];

/// The item parameters GA4 defines; any other key of an item is a custom item parameter.
const STANDARD_ITEM_PARAMS: &[&str] = &[
    "item_id",
    "item_name",
    "affiliation",
    "coupon",
    "discount",
    "index",
    "item_brand",
    "item_category",
    "item_category2",
    "item_category3",
    "item_category4",
    "item_category5",
    "item_list_id",
    "item_list_name",
    "item_variant",
    "location_id",
    "price",
    "quantity",
    "promotion_id",
    "promotion_name",
    "creative_name",
    "creative_slot",
];

/// Every rule a serialised request body breaks, as `field.path: what is wrong`.
pub fn check_body(body: &[u8]) -> Vec<String> {
    let mut problems = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(request)) => check_request(&request),
        _ => vec!["body: not a JSON object".to_owned()],
    };
    if body.len() >= MAX_BODY_BYTES {
        problems.push(format!("body: {} bytes; GA4 takes less than {MAX_BODY_BYTES} bytes per request", body.len()));
    }
    problems
}

/// Every rule a request breaks.
pub fn check_request(request: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    match request.get("client_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        _ => out.push("client_id: required for a web stream (the browser's _ga client id)".to_owned()),
    }
    if let Some(user_id) = request.get("user_id") {
        match user_id.as_str() {
            Some(s) => {
                let n = s.chars().count();
                if n > MAX_USER_ID_CHARS {
                    out.push(format!("user_id: must be at most {MAX_USER_ID_CHARS} characters (has {n})"));
                }
            }
            None => out.push("user_id: must be a string".to_owned()),
        }
    }
    match request.get("events").and_then(Value::as_array) {
        None => out.push("events: required".to_owned()),
        Some(events) => {
            if events.is_empty() {
                out.push("events: at least one event is required".to_owned());
            }
            if events.len() > MAX_EVENTS {
                out.push(format!("events: at most {MAX_EVENTS} events per request (has {})", events.len()));
            }
            for (i, event) in events.iter().enumerate() {
                check_event(&format!("events[{i}]"), event, &mut out);
            }
        }
    }
    out
}

fn check_event(path: &str, event: &Value, out: &mut Vec<String>) {
    let Some(event) = event.as_object() else {
        out.push(format!("{path}: must be an object"));
        return;
    };
    let name = event.get("name").and_then(Value::as_str).unwrap_or_default();
    for problem in name_problems(name, RESERVED_EVENT_PREFIXES) {
        out.push(format!("{path}.name: '{name}' {problem}"));
    }
    if RESERVED_EVENT_NAMES.contains(&name) {
        out.push(format!("{path}.name: '{name}' is reserved by GA4"));
    }
    let empty = Map::new();
    let params = match event.get("params") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => {
            out.push(format!("{path}.params: must be an object"));
            &empty
        }
    };
    if params.len() > MAX_PARAMS {
        out.push(format!("{path}.params: at most {MAX_PARAMS} parameters (has {})", params.len()));
    }
    for (key, value) in params {
        let at = format!("{path}.params.{key}");
        for problem in name_problems(key, RESERVED_PARAM_PREFIXES) {
            out.push(format!("{at}: the name {problem}"));
        }
        if RESERVED_PARAM_NAMES.contains(&key.as_str()) {
            out.push(format!("{at}: the name is reserved by GA4"));
        }
        if key != "items" {
            check_scalar(&at, value, out);
        }
    }
    if is_ecommerce(name) {
        let present = match params.get("transaction_id") {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Number(_)) => true,
            _ => false,
        };
        if !present {
            out.push(format!("{path}.params.transaction_id: required for {name}, and never empty"));
        }
    }
    if let Some(value) = params.get("value") {
        if !value.is_number() {
            out.push(format!("{path}.params.value: must be a number"));
        }
        if !params.contains_key("currency") {
            out.push(format!("{path}.params.currency: required when value is set"));
        }
    }
    if let Some(currency) = params.get("currency") {
        let ok = currency.as_str().is_some_and(|c| c.len() == 3 && c.chars().all(|c| c.is_ascii_uppercase()));
        if !ok {
            out.push(format!("{path}.params.currency: must be a three-letter ISO 4217 code such as EUR"));
        }
    }
    if let Some(items) = params.get("items") {
        match items.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_item(&format!("{path}.params.items[{i}]"), item, out);
                }
            }
            None => out.push(format!("{path}.params.items: must be an array")),
        }
    }
}

fn check_item(path: &str, item: &Value, out: &mut Vec<String>) {
    let Some(item) = item.as_object() else {
        out.push(format!("{path}: must be an object"));
        return;
    };
    let named = ["item_id", "item_name"]
        .iter()
        .any(|k| item.get(*k).is_some_and(|v| v.as_str().is_some_and(|s| !s.trim().is_empty())));
    if !named {
        out.push(format!("{path}: needs item_id or item_name"));
    }
    let custom = item.keys().filter(|k| !STANDARD_ITEM_PARAMS.contains(&k.as_str())).count();
    if custom > MAX_CUSTOM_ITEM_PARAMS {
        out.push(format!("{path}: at most {MAX_CUSTOM_ITEM_PARAMS} custom item parameters (has {custom})"));
    }
    for (key, value) in item {
        check_scalar(&format!("{path}.{key}"), value, out);
    }
}

fn check_scalar(at: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            let n = s.chars().count();
            if n > MAX_PARAM_VALUE_CHARS {
                out.push(format!("{at}: string values must be at most {MAX_PARAM_VALUE_CHARS} characters (has {n})"));
            }
        }
        Value::Number(_) | Value::Bool(_) => {}
        _ => out.push(format!("{at}: must be a string or a number")),
    }
}

/// What is wrong with an event or parameter name, if anything.
pub fn name_problems(name: &str, reserved_prefixes: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    if name.is_empty() {
        problems.push("must not be empty".to_owned());
        return problems;
    }
    if let Some(prefix) = reserved_prefixes.iter().find(|p| name.starts_with(**p)) {
        problems.push(format!("must not start with the reserved prefix '{prefix}'"));
    }
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        problems.push(format!("must be at most {MAX_NAME_CHARS} characters (has {n})"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        problems.push("must start with a letter".to_owned());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        problems.push("may only contain letters, digits and underscores".to_owned());
    }
    problems
}
