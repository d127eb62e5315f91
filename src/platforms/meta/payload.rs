//! Conversions API bodies, built only from the stored event and its route, so every resend
//! carries the same `event_id`, `event_time` and event object (G2, G5).
//!
//! Shape: developers.facebook.com/docs/marketing-api/conversions-api/parameters — server-event
//! (`event_name`, `event_time`, `event_id`, `action_source`, `event_source_url`,
//! `data_processing_options`), customer-information-parameters (`user_data`), custom-data;
//! docs/platforms.md §Meta.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

use serde_json::{Map, Number, Value};

use super::normalize::{self, Field};
use crate::core::pii::sha256_hex;
use crate::core::{Event, Identity, Route};

/// Attribute holding the page URL a `website` event happened on.
pub const EVENT_SOURCE_URL_ATTRIBUTE: &str = "event_source_url";

/// Scalar attributes copied into `custom_data` under their own name: Meta's standard
/// custom-data keys that carry no personal data. Other attributes are not sent.
pub const CUSTOM_DATA_ATTRIBUTES: [&str; 6] =
    ["content_name", "content_category", "content_type", "predicted_ltv", "status", "delivery_category"];

/// The `user_data` keys holding personal data, left out when consent for ad user data is
/// missing (`strip_personal`): the contact data (`em`, `ph`, `fn`, `ln`), gender and date of
/// birth (`ge`, `db`), and the address parts that go with a street (`ct`, `st`, `zp`,
/// `country`) — the same set GA4 leaves out as `user_data`. Pseudonymous ids (`external_id`,
/// `fbp`, `fbc`) and the connection's `client_ip_address` and `client_user_agent` stay.
pub const PERSONAL_KEYS: [&str; 10] = ["em", "ph", "fn", "ln", "ge", "db", "ct", "st", "zp", "country"];

/// Limited Data Use, as configured (`data_processing_options` and its geography).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ldu {
    pub options: Vec<String>,
    pub country: Option<i64>,
    pub state: Option<i64>,
}

/// What a destination adds to every event it builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `action_source` for routes that name none.
    pub default_action_source: String,
    /// `None`: Limited Data Use off (nothing sent).
    pub ldu: Option<Ldu>,
}

impl Default for Settings {
    fn default() -> Self {
        Self { default_action_source: "system_generated".into(), ldu: None }
    }
}

/// One event's part of a request, ready to batch and send.
#[derive(Clone, Debug)]
pub struct ServerEvent {
    /// The event object, serialised once: these bytes go into every body the event is part of,
    /// and their hash is the delivery's payload hash.
    pub event_json: String,
    pub event_sha256: String,
}

impl ServerEvent {
    pub fn new(event: &Event, route: &Route, strip_personal: bool, settings: &Settings) -> Self {
        let event_json = event_object(event, route, strip_personal, settings).to_string();
        let event_sha256 = sha256_hex(event_json.as_bytes());
        Self { event_json, event_sha256 }
    }
}

/// The `event_id` Meta dedupes on (with `event_name`).
///
/// For a kind the browser also tracks, the browser's own id when the identity bridge captured
/// it (`identity.browser_event_id`), so Meta keeps one of the pixel's event and ours. Otherwise
/// Surety's `event_id`: the source's id, or, when the source gave none, the derivation
/// `{subject type}:{subject id}:{kind}` (`order:1042:order_paid`). A browser-tracked kind without
/// a captured id therefore dedupes only if the shop's pixel sends that same string as its
/// `eventID` — e.g. `fbq('track', 'Purchase', {...}, {eventID: 'order:' + orderId + ':order_paid'})`.
pub fn event_id<'a>(event: &'a Event, route: &Route) -> &'a str {
    let browser = event.identity.browser_event_id.as_deref().filter(|id| !id.trim().is_empty());
    match browser {
        Some(id) if route.browser_tracked => id,
        _ => event.event_id.as_str(),
    }
}

/// The route's `action_source`, else the destination's default.
pub fn action_source<'a>(route: &'a Route, settings: &'a Settings) -> &'a str {
    route.action_source.as_deref().unwrap_or(&settings.default_action_source)
}

/// `custom_data.order_id`: the `order_id` attribute (a non-empty string, or a number as its
/// text), else the subject id of an `order`.
pub fn order_id(event: &Event) -> Option<String> {
    match event.attributes.get("order_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
        Some(Value::Number(n)) => return Some(n.to_string()),
        _ => {}
    }
    (event.subject.kind == "order" && !event.subject.id.trim().is_empty()).then(|| event.subject.id.clone())
}

/// The server event object for one delivery.
pub fn event_object(event: &Event, route: &Route, strip_personal: bool, settings: &Settings) -> Value {
    let mut o = Map::new();
    o.insert("event_name".into(), route.event.as_str().into());
    o.insert("event_time".into(), event.occurred_at.timestamp().into());
    o.insert("event_id".into(), event_id(event, route).into());
    o.insert("action_source".into(), action_source(route, settings).into());
    if let Some(Value::String(url)) = event.attributes.get(EVENT_SOURCE_URL_ATTRIBUTE) {
        if !url.trim().is_empty() {
            o.insert("event_source_url".into(), url.as_str().into());
        }
    }
    o.insert("user_data".into(), Value::Object(user_data(&event.identity, strip_personal)));
    let custom = custom_data(event);
    if !custom.is_empty() {
        o.insert("custom_data".into(), Value::Object(custom));
    }
    if let Some(ldu) = &settings.ldu {
        let options = ldu.options.iter().map(|s| Value::from(s.as_str())).collect();
        o.insert("data_processing_options".into(), Value::Array(options));
        if let Some(country) = ldu.country {
            o.insert("data_processing_options_country".into(), country.into());
        }
        if let Some(state) = ldu.state {
            o.insert("data_processing_options_state".into(), state.into());
        }
    }
    Value::Object(o)
}

/// `user_data`: Meta-normalised hashes as one-element arrays (as the SDK sends them; `ge` and
/// `db` were hashed at ingest from `f`/`m` and `YYYYMMDD`, see `core::pii`), the browser ids
/// and connection data plain. An `ip` that is not an IP address is left out (it could not
/// match, and Meta refuses a malformed one).
pub fn user_data(identity: &Identity, strip_personal: bool) -> Map<String, Value> {
    let mut ud = Map::new();
    let one = |v: &str| Value::Array(vec![Value::from(v)]);
    if !strip_personal {
        let hashed = [
            ("em", &identity.email),
            ("ph", &identity.phone),
            ("fn", &identity.first_name),
            ("ln", &identity.last_name),
            ("ge", &identity.gender),
            ("db", &identity.date_of_birth),
        ];
        for (key, field) in hashed {
            if let Some(h) = field {
                ud.insert(key.into(), one(h.meta.as_str()));
            }
        }
        let plain = [
            (Field::City, &identity.city),
            (Field::State, &identity.region),
            (Field::Zip, &identity.postal_code),
            (Field::Country, &identity.country),
        ];
        for (field, value) in plain {
            if let Some(h) = value.as_deref().and_then(|v| normalize::hash(field, v)) {
                ud.insert(field.key().into(), one(&h));
            }
        }
    }
    if let Some(h) = identity.user_id.as_deref().and_then(|v| normalize::hash(Field::ExternalId, v)) {
        ud.insert("external_id".into(), one(&h));
    }
    let plain = [("fbp", &identity.fbp), ("fbc", &identity.fbc), ("client_user_agent", &identity.user_agent)];
    for (key, value) in plain {
        if let Some(v) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            ud.insert(key.into(), v.into());
        }
    }
    if let Some(ip) = identity.ip.as_deref().and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok()) {
        ud.insert("client_ip_address".into(), ip.to_string().into());
    }
    ud
}

/// Whether `user_data` holds something Meta can match a person on: `em`, `ph`, `external_id`,
/// `fbp` or `fbc`, or `client_ip_address` together with `client_user_agent`. (Names, gender,
/// date of birth and address parts alone are not counted: Meta matches them only in
/// combination with others.)
pub fn matchable(user_data: &Map<String, Value>) -> bool {
    ["em", "ph", "external_id", "fbp", "fbc"].iter().any(|k| user_data.contains_key(*k))
        || (user_data.contains_key("client_ip_address") && user_data.contains_key("client_user_agent"))
}

fn custom_data(event: &Event) -> Map<String, Value> {
    let mut c = Map::new();
    for key in CUSTOM_DATA_ATTRIBUTES {
        if let Some(v @ (Value::String(_) | Value::Number(_))) = event.attributes.get(key) {
            c.insert(key.into(), v.clone());
        }
    }
    if let Some(value) = event.value.and_then(Number::from_f64) {
        c.insert("value".into(), Value::Number(value));
    }
    if let Some(currency) = &event.currency {
        c.insert("currency".into(), currency.as_str().into());
    }
    if let Some(id) = order_id(event) {
        c.insert("order_id".into(), id.into());
    }
    if !event.items.is_empty() {
        let contents: Vec<Value> = event.items.iter().filter_map(content).collect();
        if !contents.is_empty() {
            c.insert("contents".into(), Value::Array(contents));
            c.entry("content_type").or_insert_with(|| "product".into());
        }
        // Ingest bounds quantities; checked anyway, so an overflow omits the count, never wraps it.
        let count = event.items.iter().try_fold(0i64, |sum, i| sum.checked_add(i.quantity.unwrap_or(1)));
        if let Some(count) = count {
            c.insert("num_items".into(), count.into());
        }
    }
    c
}

/// `{id, quantity, item_price}`; an item without an id has no `contents` form.
fn content(item: &crate::core::Item) -> Option<Value> {
    let id = item.id.as_deref().filter(|id| !id.trim().is_empty())?;
    let mut o = Map::new();
    o.insert("id".into(), id.into());
    o.insert("quantity".into(), item.quantity.unwrap_or(1).into());
    if let Some(price) = item.price.and_then(Number::from_f64) {
        o.insert("item_price".into(), Value::Number(price));
    }
    Some(Value::Object(o))
}

/// The body of one request: `{"data": [...], "test_event_code"?}`, the events in order.
pub fn request_body(parts: &[&ServerEvent], test_event_code: Option<&str>) -> Vec<u8> {
    let events_len: usize = parts.iter().map(|p| p.event_json.len().saturating_add(1)).sum();
    let mut body = String::with_capacity(events_len.saturating_add(64));
    body.push_str("{\"data\":[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&p.event_json);
    }
    body.push(']');
    if let Some(code) = test_event_code {
        body.push_str(",\"test_event_code\":");
        body.push_str(&Value::from(code).to_string());
    }
    body.push('}');
    body.into_bytes()
}
