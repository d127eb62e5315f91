//! The canonical event and identity-capture JSON of `POST /v1/events` and `POST /v1/identities`
//! (SPEC §6): parsed strictly, every problem reported with its field, personal fields hashed here.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::FieldError;
use crate::core::event::{check_amount, check_id, check_quantity};
use crate::core::ga_cookie;
use crate::core::pii::{self, Hashed, PiiError};
use crate::core::IdentityCapture;
use crate::core::{Consent, Currency, Event, EventId, Identity, Item, Kind, Subject};

/// Longest accepted plain identifier (client id, click ids, user agent, …).
const MAX_ID_LEN: usize = 1024;
/// The identity fields that are identifiers (checked with `core::event::check_id`).
const ID_FIELDS: [&str; 10] =
    ["client_id", "session_id", "user_id", "gclid", "gbraid", "wbraid", "fbp", "fbc", "li_fat_id", "browser_event_id"];
/// How far in the future an event time may lie (clock skew between systems).
const FUTURE_TOLERANCE_MINUTES: i64 = 5;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventInput {
    event_id: Option<String>,
    kind: String,
    occurred_at: String,
    subject: SubjectInput,
    value: Option<f64>,
    currency: Option<String>,
    #[serde(default)]
    items: Vec<ItemInput>,
    #[serde(default)]
    identity: IdentityInput,
    #[serde(default)]
    consent: Consent,
    #[serde(default)]
    attributes: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectInput {
    #[serde(rename = "type")]
    kind: String,
    id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemInput {
    id: Option<String>,
    name: Option<String>,
    price: Option<f64>,
    quantity: Option<i64>,
}

/// Identity as a source sends it: personal fields raw (or already SHA-256 hex).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityInput {
    client_id: Option<String>,
    session_id: Option<String>,
    user_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    street: Option<String>,
    /// `f`, `female`, `m` or `male`, any case.
    gender: Option<String>,
    /// `YYYY-MM-DD` (or `YYYYMMDD`).
    date_of_birth: Option<String>,
    city: Option<String>,
    region: Option<String>,
    postal_code: Option<String>,
    country: Option<String>,
    gclid: Option<String>,
    gbraid: Option<String>,
    wbraid: Option<String>,
    fbp: Option<String>,
    fbc: Option<String>,
    li_fat_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    browser_event_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaptureInput {
    subject: SubjectInput,
    captured_at: Option<String>,
    #[serde(default)]
    identity: IdentityInput,
    #[serde(default)]
    consent: Consent,
}

fn shape_error(e: serde_path_to_error::Error<serde_json::Error>, prefix: &str) -> FieldError {
    let mut path = e.path().to_string();
    let message = e.inner().to_string();
    // serde reports a missing field at its parent: name the field itself.
    if let Some(name) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
        path = if path == "." { name.to_owned() } else { format!("{path}.{name}") };
    }
    let field = match (prefix.is_empty(), path.as_str()) {
        (true, p) => p.to_owned(),
        (false, ".") => prefix.to_owned(),
        (false, p) => format!("{prefix}.{p}"),
    };
    let code = if message.starts_with("unknown field") {
        "unknown_field"
    } else if message.starts_with("missing field") {
        "required"
    } else {
        "invalid"
    };
    // serde names the field inside the message; drop its " at line … column …" tail.
    let message = message.split(" at line ").next().unwrap_or_default().to_owned();
    // serde quotes the value it could not use (`invalid type: integer `4917099998888`, expected
    // a string`); under `identity` that value may be personal: keep only what was expected.
    let message = if code == "invalid" && field.split('.').any(|part| part == "identity") {
        match message.split_once(", expected ") {
            Some((_, expected)) => format!("has the wrong type or value: expected {expected}"),
            None => "has the wrong type or value".to_owned(),
        }
    } else {
        message
    };
    FieldError::new(field, code, message)
}

/// serde reads a struct from a JSON array too (its fields in order), so `"subject": ["order",
/// "1042"]` would pass as a subject: every object of the input must be a JSON object. `null`
/// is left to serde (absent for optional parts, an error for required ones).
fn objects_only(value: &Value, prefix: &str, parts: &[&str]) -> Result<(), Vec<FieldError>> {
    let at = |f: &str| match (prefix.is_empty(), f.is_empty()) {
        (_, true) => prefix.to_owned(),
        (true, false) => f.to_owned(),
        (false, false) => format!("{prefix}.{f}"),
    };
    // Worded as serde words a type error (`invalid type: …`), which the importer's header check reads.
    let not_object = |field: String, v: &Value| {
        let found = match v {
            Value::Array(_) => "an array",
            Value::String(_) => "a string",
            Value::Number(_) => "a number",
            Value::Bool(_) => "a boolean",
            _ => "null",
        };
        vec![FieldError::new(field, "invalid", format!("invalid type: {found}, expected a JSON object"))]
    };
    let Some(object) = value.as_object() else { return Err(not_object(at(""), value)) };
    for part in parts {
        match object.get(*part) {
            Some(Value::Array(items)) if *part == "items" => {
                if let Some((i, item)) = items.iter().enumerate().find(|(_, item)| !item.is_object()) {
                    return Err(not_object(at(&format!("items[{i}]")), item));
                }
            }
            Some(v) if !(v.is_object() || v.is_null()) && *part != "items" => return Err(not_object(at(part), v)),
            _ => {}
        }
    }
    Ok(())
}

/// Parses one canonical event. `prefix` names its place in a batch (`events[3]`) for messages.
pub fn parse_event(value: Value, source: &str, now: DateTime<Utc>, prefix: &str) -> Result<Event, Vec<FieldError>> {
    let at = |f: &str| if prefix.is_empty() { f.to_owned() } else { format!("{prefix}.{f}") };
    objects_only(&value, prefix, &["subject", "identity", "consent", "attributes", "items"])?;
    let input: EventInput = serde_path_to_error::deserialize(value).map_err(|e| vec![shape_error(e, prefix)])?;
    let mut errors = Vec::new();

    let kind = Kind::parse(&input.kind).map_err(|m| errors.push(FieldError::new(at("kind"), "invalid", m))).ok();
    let subject = parse_subject(input.subject, &at("subject"), &mut errors);
    let occurred_at = parse_time(&input.occurred_at, &at("occurred_at"), now, &mut errors);
    let event_id = match input.event_id {
        Some(id) => {
            EventId::parse(&id).map_err(|e| errors.push(FieldError::new(at("event_id"), e.code, e.message))).ok()
        }
        None => match (&subject, &kind) {
            (Some(s), Some(k)) => Some(EventId::derive(s, k)),
            _ => None,
        },
    };
    if let Some(Err((code, message))) = input.value.map(check_amount) {
        errors.push(FieldError::new(at("value"), code, message));
    }
    let currency = input
        .currency
        .map(|c| Currency::parse(&c).map_err(|m| errors.push(FieldError::new(at("currency"), "invalid", m))).ok())
        .unwrap_or(None);
    if input.value.is_some() && currency.is_none() && !errors.iter().any(|e| e.field == at("currency")) {
        errors.push(FieldError::new(at("currency"), "required", "is required when value is set"));
    }
    let items = input
        .items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_item(item, &at(&format!("items[{i}]")), &mut errors))
        .collect();
    let identity = parse_identity(input.identity, &at("identity"), now, &mut errors);
    for (k, v) in &input.attributes {
        if !(v.is_string() || v.is_number() || v.is_boolean() || v.is_null()) {
            errors.push(FieldError::new(
                at(&format!("attributes.{k}")),
                "invalid",
                "must be a string, number or boolean",
            ));
        }
    }

    match (errors.is_empty(), event_id, kind, subject, occurred_at) {
        (true, Some(event_id), Some(kind), Some(subject), Some(occurred_at)) => Ok(Event {
            event_id,
            kind,
            source: source.to_owned(),
            occurred_at,
            received_at: now,
            subject,
            value: input.value,
            currency,
            items,
            identity,
            consent: input.consent,
            attributes: input.attributes,
            joined: Vec::new(),
        }),
        _ => Err(errors),
    }
}

/// Parses an identity capture for the bridge.
pub fn parse_capture(value: Value, now: DateTime<Utc>) -> Result<IdentityCapture, Vec<FieldError>> {
    objects_only(&value, "", &["subject", "identity", "consent"])?;
    let input: CaptureInput = serde_path_to_error::deserialize(value).map_err(|e| vec![shape_error(e, "")])?;
    let mut errors = Vec::new();
    let subject = parse_subject(input.subject, "subject", &mut errors);
    let captured_at = match &input.captured_at {
        Some(t) => parse_time(t, "captured_at", now, &mut errors),
        None => Some(now),
    };
    let identity = parse_identity(input.identity, "identity", now, &mut errors);
    match (errors.is_empty(), subject, captured_at) {
        (true, Some(subject), Some(captured_at)) => {
            Ok(IdentityCapture { subject, captured_at, identity, consent: input.consent, from_browser: false })
        }
        _ => Err(errors),
    }
}

fn parse_subject(s: SubjectInput, field: &str, errors: &mut Vec<FieldError>) -> Option<Subject> {
    // The subject is the join key and part of derived event ids: core's id rule, no invisible variants.
    Subject::parse(s.kind, s.id)
        .map_err(|list| {
            for (name, e) in list {
                errors.push(FieldError::new(format!("{field}.{name}"), e.code, e.message));
            }
        })
        .ok()
}

fn parse_time(raw: &str, field: &str, now: DateTime<Utc>, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => {
            let t = t.with_timezone(&Utc);
            if now.checked_add_signed(Duration::minutes(FUTURE_TOLERANCE_MINUTES)).is_some_and(|limit| t > limit) {
                errors.push(FieldError::new(field, "out_of_range", "lies in the future"));
                None
            } else {
                Some(t)
            }
        }
        Err(_) => {
            errors.push(FieldError::new(
                field,
                "invalid",
                "must be an RFC 3339 time with offset, e.g. 2026-11-20T10:15:00Z",
            ));
            None
        }
    }
}

fn parse_item(item: ItemInput, field: &str, errors: &mut Vec<FieldError>) -> Item {
    if item.id.as_deref().is_none_or(str::is_empty) && item.name.as_deref().is_none_or(str::is_empty) {
        errors.push(FieldError::new(field, "required", "an item needs an id or a name"));
    }
    if let Some(Err((code, message))) = item.price.map(check_amount) {
        errors.push(FieldError::new(format!("{field}.price"), code, message));
    }
    if let Some(Err((code, message))) = item.quantity.map(check_quantity) {
        errors.push(FieldError::new(format!("{field}.quantity"), code, message));
    }
    Item { id: item.id, name: item.name, price: item.price, quantity: item.quantity }
}

/// `now` bounds a date of birth (none lies in the future).
fn parse_identity(i: IdentityInput, field: &str, now: DateTime<Utc>, errors: &mut Vec<FieldError>) -> Identity {
    let mut plain = |name: &str, v: Option<String>| -> Option<String> {
        let v = v?.trim().to_owned();
        if v.is_empty() {
            return None;
        }
        if v.len() > MAX_ID_LEN {
            errors.push(FieldError::new(
                format!("{field}.{name}"),
                "too_long",
                format!("must be at most {MAX_ID_LEN} bytes"),
            ));
            return None;
        }
        // Identifiers (not free text such as a city, which may carry a legitimate joiner) obey
        // core's id rule, so an invisible variant never joins or dedupes apart from the real one.
        if ID_FIELDS.contains(&name) {
            if let Err(e) = check_id(&v, MAX_ID_LEN) {
                errors.push(FieldError::new(format!("{field}.{name}"), e.code, e.message));
                return None;
            }
        }
        Some(v)
    };
    let mut id = Identity {
        // A raw `_ga` / `_ga_<stream>` cookie value is stored in its plain form.
        client_id: plain("client_id", i.client_id).map(|v| ga_cookie::client_id(&v)),
        session_id: plain("session_id", i.session_id).map(|v| ga_cookie::session_id(&v)),
        user_id: plain("user_id", i.user_id),
        city: plain("city", i.city),
        region: plain("region", i.region),
        postal_code: plain("postal_code", i.postal_code),
        gclid: plain("gclid", i.gclid),
        gbraid: plain("gbraid", i.gbraid),
        wbraid: plain("wbraid", i.wbraid),
        fbp: plain("fbp", i.fbp),
        fbc: plain("fbc", i.fbc),
        li_fat_id: plain("li_fat_id", i.li_fat_id),
        ip: plain("ip", i.ip),
        user_agent: plain("user_agent", i.user_agent),
        browser_event_id: plain("browser_event_id", i.browser_event_id),
        ..Identity::default()
    };
    let country = plain("country", i.country);
    let mut hashed = |name: &str, v: Option<String>, f: fn(&str) -> Result<Hashed, PiiError>| {
        let v = v.filter(|v| !v.trim().is_empty())?;
        // The raw value is dropped here; only the error text (never the value) is reported.
        f(&v).map_err(|e| errors.push(FieldError::new(format!("{field}.{name}"), "invalid", e.0))).ok()
    };
    id.email = hashed("email", i.email, pii::hash_email);
    id.phone = hashed("phone", i.phone, pii::hash_phone);
    id.first_name = hashed("first_name", i.first_name, pii::hash_name);
    id.last_name = hashed("last_name", i.last_name, pii::hash_name);
    id.street = hashed("street", i.street, pii::hash_street);
    id.gender = hashed("gender", i.gender, pii::hash_gender);
    let today = now.date_naive();
    id.date_of_birth = i.date_of_birth.filter(|v| !v.trim().is_empty()).and_then(|v| {
        pii::hash_date_of_birth(&v, today)
            .map_err(|e| errors.push(FieldError::new(format!("{field}.date_of_birth"), "invalid", e.0)))
            .ok()
    });
    id.country = country.and_then(|c| {
        pii::normalise_country(&c)
            .map_err(|e| errors.push(FieldError::new(format!("{field}.country"), "invalid", e.0)))
            .ok()
    });
    id
}

#[cfg(test)]
mod tests;
