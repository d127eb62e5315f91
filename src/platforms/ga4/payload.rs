//! GA4 Measurement Protocol bodies, built only from the stored event and its route, so every
//! resend carries the same event time and the same event object (G2, G5).
//!
//! Shape: developers.google.com/analytics/devguides/collection/protocol/ga4/reference and
//! …/ga4/uid-data (user-provided data); docs/platforms.md §GA4.

use serde_json::{Map, Number, Value};

use crate::core::pii::sha256_hex;
use crate::core::{ConsentState, Event, Identity, Route};

/// A request body must stay below this many bytes.
pub const MAX_BODY_BYTES: usize = 130_000;

/// GA4 wants a positive engagement time for a server event to join the browser's session.
pub const ENGAGEMENT_TIME_MSEC: i64 = 1;

/// Events whose `transaction_id` is required (and, for purchases, deduplicated on).
pub fn is_ecommerce(route_event: &str) -> bool {
    matches!(route_event, "purchase" | "refund")
}

/// One event's part of a request, ready to batch and send.
#[derive(Clone, Debug)]
pub struct Ga4Event {
    /// The request-level fields (`client_id`, `user_id`, `consent`, `user_data`, and with
    /// analytics consent `ip_override`, `user_agent`, `user_location`) serialised:
    /// every event of a request shares them, so events may share a request only when these
    /// are equal.
    pub header_json: String,
    /// `{name, params, timestamp_micros}`, serialised once: these bytes go into every body
    /// this event is part of, and their hash is the delivery's payload hash.
    pub event_json: String,
    pub event_sha256: String,
    pub timestamp_micros: i64,
}

impl Ga4Event {
    pub fn new(event: &Event, route: &Route, strip_personal: bool) -> Self {
        let header_json = Value::Object(header(event, strip_personal)).to_string();
        let timestamp_micros = event.occurred_at.timestamp_micros();
        let event_json = event_object(event, route).to_string();
        let event_sha256 = sha256_hex(event_json.as_bytes());
        Self { header_json, event_json, event_sha256, timestamp_micros }
    }
}

/// The request-level fields of an event's request.
pub fn header(event: &Event, strip_personal: bool) -> Map<String, Value> {
    let mut h = Map::new();
    if let Some(client_id) = &event.identity.client_id {
        h.insert("client_id".into(), client_id.as_str().into());
    }
    if let Some(user_id) = &event.identity.user_id {
        h.insert("user_id".into(), user_id.as_str().into());
    }
    let mut consent = Map::new();
    for (key, state) in
        [("ad_user_data", event.consent.ad_user_data), ("ad_personalization", event.consent.ad_personalization)]
    {
        if let Some(state) = state {
            let text = match state {
                ConsentState::Granted => "GRANTED",
                ConsentState::Denied => "DENIED",
            };
            consent.insert(key.into(), text.into());
        }
    }
    if !consent.is_empty() {
        h.insert("consent".into(), Value::Object(consent));
    }
    if !strip_personal {
        if let Some(user_data) = user_data(&event.identity) {
            h.insert("user_data".into(), user_data);
        }
    }
    // Where the visitor was and what browser they used, only with analytics consent: GA4
    // derives geography and device from these (docs/platforms.md §GA4, changelog 2025-05-14
    // and 2025-06-11). Without them GA4 would place every server event at Surety's address.
    if event.consent.analytics == Some(ConsentState::Granted) {
        let identity = &event.identity;
        if let Some(ip) = identity.ip.as_deref() {
            h.insert("ip_override".into(), ip.into());
        }
        if let Some(ua) = identity.user_agent.as_deref() {
            h.insert("user_agent".into(), ua.into());
        }
        if let Some(location) = user_location(identity) {
            h.insert("user_location".into(), location);
        }
    }
    h
}

/// `user_location` from the plain (not personal) location fields: `city`, `country_id`
/// (ISO 3166-1 alpha-2) and `region_id` (ISO 3166-2, such as `US-CA`: the region as given
/// when it has that form, else built from the country and a short region code).
fn user_location(identity: &Identity) -> Option<Value> {
    let mut l = Map::new();
    if let Some(city) = identity.city.as_deref() {
        l.insert("city".into(), city.into());
    }
    let country = identity.country.as_deref().filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()));
    let country = country.map(str::to_ascii_uppercase);
    if let Some(region) = identity.region.as_deref().map(str::to_ascii_uppercase) {
        let code = |s: &str| (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
        let region_id = match (region.split_once('-'), &country) {
            (Some((c, r)), _) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) && code(r) => Some(region),
            (None, Some(c)) if code(&region) => Some(format!("{c}-{region}")),
            _ => None,
        };
        if let Some(region_id) = region_id {
            l.insert("region_id".into(), region_id.into());
        }
    }
    if let Some(country) = country {
        l.insert("country_id".into(), country.into());
    }
    (!l.is_empty()).then_some(Value::Object(l))
}

/// `user_data` from the Google-normalised hashes; `None` when nothing is known.
fn user_data(identity: &Identity) -> Option<Value> {
    let mut ud = Map::new();
    if let Some(email) = &identity.email {
        ud.insert("sha256_email_address".into(), Value::Array(vec![email.google.as_str().into()]));
    }
    if let Some(phone) = &identity.phone {
        ud.insert("sha256_phone_number".into(), Value::Array(vec![phone.google.as_str().into()]));
    }
    let mut address = Map::new();
    let hashed = [
        ("sha256_first_name", &identity.first_name),
        ("sha256_last_name", &identity.last_name),
        ("sha256_street", &identity.street),
    ];
    for (key, field) in hashed {
        if let Some(h) = field {
            address.insert(key.into(), h.google.as_str().into());
        }
    }
    let plain = [
        ("city", &identity.city),
        ("region", &identity.region),
        ("postal_code", &identity.postal_code),
        ("country", &identity.country),
    ];
    for (key, field) in plain {
        if let Some(v) = field {
            address.insert(key.into(), v.as_str().into());
        }
    }
    if !address.is_empty() {
        ud.insert("address".into(), Value::Array(vec![Value::Object(address)]));
    }
    (!ud.is_empty()).then_some(Value::Object(ud))
}

/// `{name, params, timestamp_micros}` for one event.
pub fn event_object(event: &Event, route: &Route) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), route.event.as_str().into());
    object.insert("params".into(), Value::Object(params(event, route)));
    object.insert("timestamp_micros".into(), event.occurred_at.timestamp_micros().into());
    Value::Object(object)
}

fn params(event: &Event, route: &Route) -> Map<String, Value> {
    let mut p = Map::new();
    // Scalar attributes first, so the fields Surety sets itself win over a same-named one.
    // Objects, arrays and nulls have no GA4 parameter form and are left out.
    for (key, value) in &event.attributes {
        if matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            p.insert(key.clone(), value.clone());
        }
    }
    if let Some(session_id) = event.identity.session_id.as_deref().filter(|s| !s.trim().is_empty()) {
        p.insert("session_id".into(), session_id.into());
        p.insert("engagement_time_msec".into(), ENGAGEMENT_TIME_MSEC.into());
    }
    if is_ecommerce(&route.event) {
        p.remove("transaction_id");
        if let Some(id) = transaction_id(event) {
            p.insert("transaction_id".into(), id.into());
        }
    }
    if let Some(value) = event.value.and_then(Number::from_f64) {
        p.insert("value".into(), Value::Number(value));
    }
    if let Some(currency) = &event.currency {
        p.insert("currency".into(), currency.as_str().into());
    }
    if !event.items.is_empty() {
        let items = event.items.iter().map(item).collect();
        p.insert("items".into(), Value::Array(items));
    }
    p
}

fn item(item: &crate::core::Item) -> Value {
    let mut o = Map::new();
    if let Some(id) = &item.id {
        o.insert("item_id".into(), id.as_str().into());
    }
    if let Some(name) = &item.name {
        o.insert("item_name".into(), name.as_str().into());
    }
    if let Some(price) = item.price.and_then(Number::from_f64) {
        o.insert("price".into(), Value::Number(price));
    }
    if let Some(quantity) = item.quantity {
        o.insert("quantity".into(), quantity.into());
    }
    Value::Object(o)
}

/// The transaction id GA4 dedupes purchases on: the `transaction_id` attribute (a non-empty
/// string, or a number as its decimal text), else the subject id of an `order`.
pub fn transaction_id(event: &Event) -> Option<String> {
    match event.attributes.get("transaction_id") {
        Some(Value::String(s)) if !s.trim().is_empty() => return Some(s.clone()),
        Some(Value::Number(n)) => return Some(n.to_string()),
        _ => {}
    }
    (event.subject.kind == "order" && !event.subject.id.trim().is_empty()).then(|| event.subject.id.clone())
}

/// Bytes a body adds around its header and events, at most: `,"events":[` … `]`, the
/// request-level `,"timestamp_micros":` with up to 20 characters, `,"validation_behavior":
/// "ENFORCE_RECOMMENDATIONS"` and the closing brace.
const BODY_OVERHEAD: usize = 12 + 20 + 20 + 50 + 1;

/// An upper bound of the body's size for a header of `header_len` bytes and `count` events
/// totalling `events_len` bytes (commas included).
pub fn body_len_bound(header_len: usize, events_len: usize, count: usize) -> usize {
    header_len + events_len + count.saturating_sub(1) + BODY_OVERHEAD
}

/// The body of one request: the shared header, the events in order, and a request-level
/// `timestamp_micros` (the earliest event's — each event carries its own, which GA4 prefers).
/// `enforce` asks the debug endpoint for its strict `ENFORCE_RECOMMENDATIONS` validation.
///
/// All `parts` must have the same header; the first one's is used.
pub fn request_body(parts: &[&Ga4Event], enforce: bool) -> Vec<u8> {
    let header = parts.first().map_or("{}", |p| p.header_json.as_str());
    let events_len: usize = parts.iter().map(|p| p.event_json.len()).sum();
    let mut body = String::with_capacity(body_len_bound(header.len(), events_len, parts.len()));
    // The header is a serialised object: reopen it to append the remaining fields.
    let open = header.strip_suffix('}').unwrap_or("{");
    body.push_str(open);
    if open.len() > 1 {
        body.push(',');
    }
    body.push_str("\"events\":[");
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&p.event_json);
    }
    body.push(']');
    if let Some(ts) = parts.iter().map(|p| p.timestamp_micros).min() {
        body.push_str(",\"timestamp_micros\":");
        body.push_str(&ts.to_string());
    }
    if enforce {
        body.push_str(",\"validation_behavior\":\"ENFORCE_RECOMMENDATIONS\"");
    }
    body.push('}');
    body.into_bytes()
}
