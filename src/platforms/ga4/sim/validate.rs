//! The simulated `/debug/mp/collect`: GA4's documented validation, answered as
//! `validationMessages` (developers.google.com/analytics/devguides/collection/protocol/ga4/
//! validating-events, reference; docs/platforms.md §GA4). Written apart from the adapter's checks on
//! purpose: a rule the adapter forgets must still show here.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// The validation codes the debug endpoint uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Code {
    ValueInvalid,
    ValueRequired,
    NameInvalid,
    NameReserved,
    ValueOutOfBounds,
    ExceededMaxEntities,
}

/// One entry of `validationMessages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub field_path: String,
    pub description: String,
    pub validation_code: Code,
}

const RESERVED_EVENTS: &str = "ad_activeview ad_click ad_exposure ad_query ad_reward adunit_exposure \
    app_clear_data app_exception app_install app_remove app_store_refund app_update app_upgrade \
    dynamic_link_app_open dynamic_link_app_update dynamic_link_first_open error firebase_campaign \
    firebase_in_app_message_action firebase_in_app_message_dismiss firebase_in_app_message_impression \
    first_open first_visit notification_dismiss notification_foreground notification_open \
    notification_receive notification_send os_update session_start user_engagement \
    ad_impression in_app_purchase screen_view";
const RESERVED_USER_PROPERTIES: &str =
    "first_open_time first_visit_time last_deep_link_referrer user_id first_open_after_install";
const ITEM_FIELDS: &str = "item_id item_name affiliation coupon discount index item_brand item_category \
    item_category2 item_category3 item_category4 item_category5 item_list_id item_list_name item_variant \
    location_id price quantity promotion_id promotion_name creative_name creative_slot";

/// How far back GA4 takes an event.
const WINDOW_MICROS: i64 = 72 * 3600 * 1_000_000;
/// A timestamp this far ahead of the platform's clock is a unit mistake, not clock skew.
const FUTURE_SLACK_MICROS: i64 = 3600 * 1_000_000;

struct Report(Vec<Message>);

impl Report {
    fn add(&mut self, path: impl Into<String>, code: Code, description: impl Into<String>) {
        self.0.push(Message { field_path: path.into(), description: description.into(), validation_code: code });
    }
}

/// Validates one debug request: its query and body, at the platform time `now`.
pub fn validate(query: &[(String, String)], body: &[u8], now: DateTime<Utc>) -> Vec<Message> {
    let mut r = Report(Vec::new());
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim()).filter(|v| !v.is_empty());
    if param("api_secret").is_none() {
        r.add("api_secret", Code::ValueRequired, "Unable to find non-empty parameter [api_secret] in the query.");
    }
    let web = param("measurement_id").is_some();
    if !web && param("firebase_app_id").is_none() {
        r.add("measurement_id", Code::ValueRequired, "Either measurement_id or firebase_app_id is required.");
    }
    let request = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        _ => {
            r.add("", Code::ValueInvalid, "Unable to parse the request body as a JSON object.");
            return r.0;
        }
    };
    let now_micros = now.timestamp_micros();
    let id_field = if web { "client_id" } else { "app_instance_id" };
    if request.get(id_field).and_then(Value::as_str).is_none_or(|s| s.trim().is_empty()) {
        r.add(id_field, Code::ValueRequired, format!("{id_field} is required and must be a non-empty string."));
    }
    if let Some(user_id) = request.get("user_id") {
        match user_id.as_str() {
            None => r.add("user_id", Code::ValueInvalid, "user_id must be a string."),
            Some(s) if s.chars().count() > 256 => {
                r.add("user_id", Code::ValueOutOfBounds, "user_id must be at most 256 characters.")
            }
            Some(_) => {}
        }
    }
    if let Some(ts) = request.get("timestamp_micros") {
        check_timestamp(&mut r, "timestamp_micros", ts, now_micros);
    }
    if let Some(v) = request.get("validation_behavior") {
        if !matches!(v.as_str(), Some("RELAXED" | "ENFORCE_RECOMMENDATIONS")) {
            r.add("validation_behavior", Code::ValueInvalid, "Must be RELAXED or ENFORCE_RECOMMENDATIONS.");
        }
    }
    if let Some(consent) = request.get("consent") {
        check_consent(&mut r, consent);
    }
    if let Some(user_data) = request.get("user_data") {
        check_user_data(&mut r, user_data);
    }
    if let Some(props) = request.get("user_properties") {
        check_user_properties(&mut r, props);
    }
    match request.get("events").and_then(Value::as_array) {
        None => r.add("events", Code::ValueRequired, "events is required and must be an array."),
        Some(events) if events.is_empty() => r.add("events", Code::ValueRequired, "At least one event is required."),
        Some(events) => {
            if events.len() > 25 {
                r.add("events", Code::ExceededMaxEntities, "A request may contain at most 25 events.");
            }
            for (i, e) in events.iter().enumerate() {
                check_event(&mut r, &format!("events[{i}]"), e, now_micros);
            }
        }
    }
    r.0
}

fn check_timestamp(r: &mut Report, path: &str, ts: &Value, now_micros: i64) {
    let Some(ts) = ts.as_i64().or_else(|| ts.as_str().and_then(|s| s.parse().ok())) else {
        r.add(path, Code::ValueInvalid, "timestamp_micros must be an integer number of microseconds.");
        return;
    };
    if ts < now_micros - WINDOW_MICROS {
        r.add(path, Code::ValueInvalid, "timestamp_micros is more than 72 hours in the past.");
    } else if ts > now_micros + FUTURE_SLACK_MICROS {
        r.add(path, Code::ValueInvalid, "timestamp_micros is in the future.");
    }
}

fn check_consent(r: &mut Report, consent: &Value) {
    let Some(consent) = consent.as_object() else {
        r.add("consent", Code::ValueInvalid, "consent must be an object.");
        return;
    };
    for (key, value) in consent {
        let path = format!("consent.{key}");
        if !matches!(key.as_str(), "ad_user_data" | "ad_personalization") {
            r.add(path, Code::NameInvalid, "Unknown consent field.");
        } else if !matches!(value.as_str(), Some("GRANTED" | "DENIED")) {
            r.add(path, Code::ValueInvalid, "Consent must be GRANTED or DENIED.");
        }
    }
}

fn is_sha256(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

fn check_user_data(r: &mut Report, user_data: &Value) {
    let Some(ud) = user_data.as_object() else {
        r.add("user_data", Code::ValueInvalid, "user_data must be an object.");
        return;
    };
    for (key, value) in ud {
        let path = format!("user_data.{key}");
        let limit = match key.as_str() {
            "sha256_email_address" | "sha256_phone_number" => 3,
            "address" => 2,
            _ => {
                r.add(path, Code::NameInvalid, "Unknown user_data field.");
                continue;
            }
        };
        let Some(list) = value.as_array() else {
            r.add(path, Code::ValueInvalid, "Must be an array.");
            continue;
        };
        if list.len() > limit {
            r.add(path.clone(), Code::ExceededMaxEntities, format!("At most {limit} values."));
        }
        for (i, v) in list.iter().enumerate() {
            let at = format!("{path}[{i}]");
            if key == "address" {
                check_address(r, &at, v);
            } else if !is_sha256(v) {
                r.add(at, Code::ValueInvalid, "Must be a SHA-256 digest in lowercase hex.");
            }
        }
    }
}

fn check_address(r: &mut Report, path: &str, address: &Value) {
    let Some(address) = address.as_object() else {
        r.add(path, Code::ValueInvalid, "An address must be an object.");
        return;
    };
    for (key, v) in address {
        let at = format!("{path}.{key}");
        match key.as_str() {
            "sha256_first_name" | "sha256_last_name" | "sha256_street" if !is_sha256(v) => {
                r.add(at, Code::ValueInvalid, "Must be a SHA-256 digest in lowercase hex.")
            }
            "sha256_first_name" | "sha256_last_name" | "sha256_street" => {}
            "city" | "region" | "postal_code" if !v.is_string() => r.add(at, Code::ValueInvalid, "Must be a string."),
            "city" | "region" | "postal_code" => {}
            "country" => {
                if !v.as_str().is_some_and(|c| c.len() == 2 && c.chars().all(|c| c.is_ascii_alphabetic())) {
                    r.add(at, Code::ValueInvalid, "country must be an ISO 3166-1 alpha-2 code.");
                }
            }
            _ => r.add(at, Code::NameInvalid, "Unknown address field."),
        }
    }
}

fn check_user_properties(r: &mut Report, props: &Value) {
    let Some(props) = props.as_object() else {
        r.add("user_properties", Code::ValueInvalid, "user_properties must be an object.");
        return;
    };
    if props.len() > 25 {
        r.add("user_properties", Code::ExceededMaxEntities, "At most 25 user properties.");
    }
    for (name, prop) in props {
        let path = format!("user_properties.{name}");
        if RESERVED_USER_PROPERTIES.split_whitespace().any(|n| n == name) {
            r.add(path.clone(), Code::NameReserved, "This user property name is reserved.");
        }
        check_name(r, &path, name, 24, &["_", "firebase_", "ga_", "google_"]);
        let value = prop.get("value");
        if value.and_then(Value::as_str).is_some_and(|s| s.chars().count() > 36) {
            r.add(format!("{path}.value"), Code::ValueOutOfBounds, "User property values are at most 36 characters.");
        }
    }
}

/// Name rules shared by events, params and user properties: reserved prefixes, then length,
/// first character and alphabet.
fn check_name(r: &mut Report, path: &str, name: &str, max: usize, reserved_prefixes: &[&str]) {
    if name.is_empty() {
        r.add(path, Code::NameInvalid, "The name must not be empty.");
        return;
    }
    if let Some(p) = reserved_prefixes.iter().find(|p| name.starts_with(*p)) {
        r.add(path, Code::NameReserved, format!("Names starting with '{p}' are reserved."));
    }
    let well_formed = name.len() <= max
        && name.chars().count() <= max
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric());
    if !well_formed {
        r.add(
            path,
            Code::NameInvalid,
            format!("Names are at most {max} letters, digits or underscores and start with a letter."),
        );
    }
}

fn check_event(r: &mut Report, path: &str, event: &Value, now_micros: i64) {
    let Some(event) = event.as_object() else {
        r.add(path, Code::ValueInvalid, "An event must be an object.");
        return;
    };
    let name = match event.get("name").and_then(Value::as_str) {
        Some(n) => n,
        None => {
            r.add(format!("{path}.name"), Code::ValueRequired, "The event name is required.");
            ""
        }
    };
    if !name.is_empty() || event.contains_key("name") {
        let at = format!("{path}.name");
        if RESERVED_EVENTS.split_whitespace().any(|n| n == name) {
            r.add(at.clone(), Code::NameReserved, format!("The event name '{name}' is reserved."));
        }
        check_name(r, &at, name, 40, &["_", "firebase_", "ga_", "google_"]);
    }
    if let Some(ts) = event.get("timestamp_micros") {
        check_timestamp(r, &format!("{path}.timestamp_micros"), ts, now_micros);
    }
    let no_params = Map::new();
    let params = match event.get("params") {
        None => &no_params,
        Some(Value::Object(p)) => p,
        Some(_) => {
            r.add(format!("{path}.params"), Code::ValueInvalid, "params must be an object.");
            &no_params
        }
    };
    check_params(r, &format!("{path}.params"), name, params);
}

fn check_params(r: &mut Report, path: &str, event_name: &str, params: &Map<String, Value>) {
    if params.len() > 25 {
        r.add(path, Code::ExceededMaxEntities, "An event may have at most 25 parameters.");
    }
    for (key, value) in params {
        let at = format!("{path}.{key}");
        if key == "firebase_conversion" {
            r.add(at.clone(), Code::NameReserved, "This parameter name is reserved.");
        }
        check_name(r, &at, key, 40, &["_", "firebase_", "ga_", "google_", "gtag."]);
        match value {
            Value::String(s) if s.chars().count() > 100 => {
                r.add(at, Code::ValueOutOfBounds, "Parameter values are at most 100 characters.")
            }
            Value::Array(_) if key == "items" => {}
            Value::Array(_) | Value::Object(_) | Value::Null => {
                r.add(at, Code::ValueInvalid, "Parameter values must be strings or numbers.")
            }
            _ => {}
        }
    }
    let number = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
    if let Some(t) = params.get("engagement_time_msec") {
        if !number(t).is_some_and(|t| t > 0.0) {
            r.add(format!("{path}.engagement_time_msec"), Code::ValueInvalid, "engagement_time_msec must be positive.");
        }
    }
    if matches!(event_name, "purchase" | "refund") {
        let ok = match params.get("transaction_id") {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Number(_)) => true,
            _ => false,
        };
        if !ok {
            r.add(format!("{path}.transaction_id"), Code::ValueRequired, "transaction_id is required.");
        }
    }
    if let Some(v) = params.get("value") {
        if number(v).is_none() {
            r.add(format!("{path}.value"), Code::ValueInvalid, "value must be a number.");
        }
        if !params.contains_key("currency") {
            r.add(format!("{path}.currency"), Code::ValueRequired, "currency is required when value is set.");
        }
    }
    if let Some(c) = params.get("currency") {
        if !c.as_str().is_some_and(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
            r.add(format!("{path}.currency"), Code::ValueInvalid, "currency must be an ISO 4217 code.");
        }
    }
    match params.get("items") {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                check_item(r, &format!("{path}.items[{i}]"), item);
            }
        }
        Some(_) => r.add(format!("{path}.items"), Code::ValueInvalid, "items must be an array."),
    }
}

fn check_item(r: &mut Report, path: &str, item: &Value) {
    let Some(item) = item.as_object() else {
        r.add(path, Code::ValueInvalid, "An item must be an object.");
        return;
    };
    let has = |k: &str| item.get(k).is_some_and(|v| v.as_str().is_some_and(|s| !s.trim().is_empty()));
    if !has("item_id") && !has("item_name") {
        r.add(path, Code::ValueRequired, "An item needs item_id or item_name.");
    }
    let custom = item.keys().filter(|k| !ITEM_FIELDS.split_whitespace().any(|f| f == k.as_str())).count();
    if custom > 10 {
        r.add(path, Code::ExceededMaxEntities, "An item may have at most 10 custom parameters.");
    }
    for (key, value) in item {
        if value.as_str().is_some_and(|s| s.chars().count() > 100) {
            r.add(format!("{path}.{key}"), Code::ValueOutOfBounds, "Item parameter values are at most 100 characters.");
        }
    }
}
