//! The simulated `events:ingest` validation: the Data Manager API's documented request rules,
//! answered the way Google answers them — fast-fail, one `google.rpc.BadRequest` listing a
//! `fieldViolations` entry for every invalid record, each with an `ErrorReason`.
//!
//! Rules: the protos `google/ads/datamanager/v1/{ingestion_service,event,destination,user_data,
//! consent,error}.proto`; developers.google.com/data-manager/api/devguides/concepts/{formatting,
//! limits,understand-errors}; docs/platforms.md §Google Ads. Written apart from the adapter's checks
//! on purpose: a rule the adapter forgets must still show here.

use std::collections::HashSet;

use chrono::DateTime;
use serde::Serialize;
use serde_json::{Map, Value};

pub const MAX_EVENTS: usize = 2000;
pub const MAX_DESTINATIONS: usize = 10;
pub const MAX_USER_IDENTIFIERS: usize = 10;

/// One `BadRequest.fieldViolations[]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub field: String,
    pub description: String,
    /// An `ErrorReason` name (error.proto).
    pub reason: &'static str,
}

struct Report(Vec<Violation>);

impl Report {
    fn add(&mut self, field: impl Into<String>, reason: &'static str, description: impl Into<String>) {
        self.0.push(Violation { field: field.into(), description: description.into(), reason });
    }
}

const EVENT_SOURCES: [&str; 5] = ["WEB", "APP", "IN_STORE", "PHONE", "OTHER"];
const CONSENT: [&str; 3] = ["CONSENT_STATUS_UNSPECIFIED", "CONSENT_GRANTED", "CONSENT_DENIED"];
const ACCOUNT_TYPES: [&str; 4] = ["GOOGLE_ADS", "DISPLAY_VIDEO_PARTNER", "DISPLAY_VIDEO_ADVERTISER", "DATA_PARTNER"];

fn digits(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// Every violation of an `IngestEventsRequest`; empty means valid.
pub fn validate(request: &Map<String, Value>) -> Vec<Violation> {
    let mut r = Report(Vec::new());
    let references = destinations(request, &mut r);
    let events = match request.get("events").and_then(Value::as_array) {
        Some(e) if !e.is_empty() => e.as_slice(),
        _ => {
            r.add("events", "REQUIRED_FIELD_MISSING", "At least one event is required.");
            &[]
        }
    };
    if events.len() > MAX_EVENTS {
        r.add("events", "TOO_MANY_EVENTS", format!("At most {MAX_EVENTS} events per request."));
    }
    let encoding = request.get("encoding").and_then(Value::as_str);
    if let Some(e) = encoding {
        if !["HEX", "BASE64"].contains(&e) {
            r.add("encoding", "INVALID_ENUM_VALUE", "encoding must be HEX or BASE64.");
        }
    }
    if events.iter().any(|e| e.get("userData").is_some()) && encoding.is_none() {
        r.add("encoding", "REQUIRED_FIELD_MISSING", "encoding is required when userData is present.");
    }
    if let Some(consent) = request.get("consent") {
        check_consent("consent", consent, &mut r);
    }
    for (i, e) in events.iter().enumerate() {
        match e.as_object() {
            Some(e) => event(&format!("events[{i}]"), e, &references, encoding.unwrap_or("HEX"), &mut r),
            None => r.add(format!("events[{i}]"), "INVALID_EVENT", "An event must be an object."),
        }
    }
    r.0
}

/// Checks `destinations[]`; returns their references.
fn destinations(request: &Map<String, Value>, r: &mut Report) -> HashSet<String> {
    let mut references = HashSet::new();
    let list = match request.get("destinations").and_then(Value::as_array) {
        Some(d) if !d.is_empty() => d.as_slice(),
        _ => {
            r.add("destinations", "REQUIRED_FIELD_MISSING", "At least one destination is required.");
            return references;
        }
    };
    if list.len() > MAX_DESTINATIONS {
        r.add("destinations", "TOO_MANY_DESTINATIONS", format!("At most {MAX_DESTINATIONS} destinations per request."));
    }
    for (k, d) in list.iter().enumerate() {
        let at = format!("destinations[{k}]");
        let Some(d) = d.as_object() else {
            r.add(at, "INVALID_DESTINATION", "A destination must be an object.");
            continue;
        };
        if let Some(reference) = d.get("reference").and_then(Value::as_str) {
            if !references.insert(reference.to_owned()) {
                r.add(
                    format!("{at}.reference"),
                    "DUPLICATE_DESTINATION_REFERENCE",
                    "Two destinations share a reference.",
                );
            }
        }
        match d.get("operatingAccount") {
            Some(a) => account(&format!("{at}.operatingAccount"), a, r),
            None => r.add(format!("{at}.operatingAccount"), "REQUIRED_FIELD_MISSING", "operatingAccount is required."),
        }
        if let Some(a) = d.get("loginAccount") {
            account(&format!("{at}.loginAccount"), a, r);
        }
        match d.get("productDestinationId").and_then(Value::as_str) {
            Some(id) if digits(id) => {}
            _ => r.add(
                format!("{at}.productDestinationId"),
                "INVALID_CONVERSION_ACTION_ID",
                "productDestinationId must be a conversion action ID.",
            ),
        }
    }
    references
}

fn account(at: &str, a: &Value, r: &mut Report) {
    if !a.get("accountId").and_then(Value::as_str).is_some_and(digits) {
        r.add(format!("{at}.accountId"), "INVALID_FORMAT", "accountId must be digits.");
    }
    let kind = a.get("accountType").or_else(|| a.get("product")).and_then(Value::as_str);
    if !kind.is_some_and(|k| ACCOUNT_TYPES.contains(&k)) {
        r.add(format!("{at}.accountType"), "INVALID_ENUM_VALUE", "accountType is required.");
    }
}

fn event(at: &str, e: &Map<String, Value>, references: &HashSet<String>, encoding: &str, r: &mut Report) {
    match e.get("eventTimestamp").and_then(Value::as_str) {
        None => r.add(format!("{at}.eventTimestamp"), "REQUIRED_FIELD_MISSING", "eventTimestamp is required."),
        Some(t) if DateTime::parse_from_rfc3339(t).is_err() => {
            r.add(format!("{at}.eventTimestamp"), "INVALID_FORMAT", "eventTimestamp must be an RFC 3339 timestamp.")
        }
        Some(_) => {}
    }
    if let Some(refs) = e.get("destinationReferences").and_then(Value::as_array) {
        for (j, reference) in refs.iter().enumerate() {
            if !reference.as_str().is_some_and(|s| references.contains(s)) {
                r.add(
                    format!("{at}.destinationReferences[{j}]"),
                    "INVALID_DESTINATION",
                    "No destination of the request has this reference.",
                );
            }
        }
    }
    if let Some(s) = e.get("eventSource") {
        if !s.as_str().is_some_and(|s| EVENT_SOURCES.contains(&s)) {
            r.add(format!("{at}.eventSource"), "INVALID_ENUM_VALUE", "Unknown eventSource.");
        }
    }
    if let Some(v) = e.get("conversionValue") {
        if !v.is_number() {
            r.add(format!("{at}.conversionValue"), "INVALID_NUMBER_FORMAT", "conversionValue must be a number.");
        }
        if !e.contains_key("currency") {
            r.add(format!("{at}.currency"), "REQUIRED_FIELD_MISSING", "currency is required with conversionValue.");
        }
    }
    if let Some(c) = e.get("currency") {
        if !c.as_str().is_some_and(|c| c.len() == 3 && c.chars().all(|c| c.is_ascii_uppercase())) {
            r.add(format!("{at}.currency"), "INVALID_CURRENCY_CODE", "currency must be an ISO 4217 code.");
        }
    }
    let mut identified = false;
    if let Some(ids) = e.get("adIdentifiers").and_then(Value::as_object) {
        for key in ["gclid", "gbraid", "wbraid"] {
            match ids.get(key).map(|v| v.as_str().filter(|s| !s.trim().is_empty())) {
                Some(Some(_)) => identified = true,
                Some(None) => r.add(format!("{at}.adIdentifiers.{key}"), "INVALID_FORMAT", format!("{key} is empty.")),
                None => {}
            }
        }
        if ids.contains_key("gbraid") && ids.contains_key("wbraid") {
            r.add(format!("{at}.adIdentifiers"), "INVALID_EVENT", "gbraid and wbraid cannot both be set.");
        }
    }
    if let Some(data) = e.get("userData") {
        identified |= user_data(&format!("{at}.userData"), data, encoding, r);
    }
    if !identified {
        r.add(at, "NO_IDENTIFIERS_PROVIDED", "The event has neither ad identifiers nor user identifiers.");
    }
    if let Some(consent) = e.get("consent") {
        check_consent(&format!("{at}.consent"), consent, r);
    }
}

/// Returns whether there is at least one identifier.
fn user_data(at: &str, data: &Value, encoding: &str, r: &mut Report) -> bool {
    let list = data.get("userIdentifiers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        r.add(format!("{at}.userIdentifiers"), "REQUIRED_FIELD_MISSING", "At least one user identifier is required.");
    }
    if list.len() > MAX_USER_IDENTIFIERS {
        r.add(format!("{at}.userIdentifiers"), "TOO_MANY_USER_IDENTIFIERS", "At most 10 user identifiers.");
    }
    for (j, id) in list.iter().enumerate() {
        let at = format!("{at}.userIdentifiers[{j}]");
        let Some(id) = id.as_object().filter(|o| o.len() == 1) else {
            r.add(at, "INVALID_FORMAT", "Exactly one of emailAddress, phoneNumber, address.");
            continue;
        };
        if let Some(v) = id.get("emailAddress").or_else(|| id.get("phoneNumber")) {
            let key = if id.contains_key("emailAddress") { "emailAddress" } else { "phoneNumber" };
            hashed(&format!("{at}.{key}"), v, encoding, r);
        } else if let Some(a) = id.get("address").and_then(Value::as_object) {
            for key in ["givenName", "familyName"] {
                hashed(&format!("{at}.address.{key}"), a.get(key).unwrap_or(&Value::Null), encoding, r);
            }
            if !a
                .get("regionCode")
                .and_then(Value::as_str)
                .is_some_and(|c| c.len() == 2 && c.chars().all(|c| c.is_ascii_alphabetic()))
            {
                r.add(
                    format!("{at}.address.regionCode"),
                    "INVALID_COUNTRY_CODE",
                    "regionCode must be ISO 3166-1 alpha-2.",
                );
            }
            if a.get("postalCode").and_then(Value::as_str).is_none_or(|p| p.trim().is_empty()) {
                r.add(format!("{at}.address.postalCode"), "INVALID_POSTAL_CODE", "postalCode is required.");
            }
        } else {
            r.add(at, "INVALID_FORMAT", "Unknown user identifier.");
        }
    }
    !list.is_empty()
}

fn hashed(at: &str, v: &Value, encoding: &str, r: &mut Report) {
    let Some(s) = v.as_str() else {
        r.add(at, "REQUIRED_FIELD_MISSING", "A hashed value is required.");
        return;
    };
    if encoding == "HEX" {
        if !s.chars().all(|c| c.is_ascii_hexdigit()) {
            r.add(at, "INVALID_HEX_ENCODING", "The value is not hex encoded.");
        } else if s.len() != 64 {
            r.add(at, "INVALID_SHA256_FORMAT", "The value is not a SHA-256 digest.");
        }
    } else if s.len() != 44 || !s.chars().all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c)) {
        r.add(at, "INVALID_BASE64_ENCODING", "The value is not a base64 SHA-256 digest.");
    }
}

fn check_consent(at: &str, consent: &Value, r: &mut Report) {
    let Some(c) = consent.as_object() else {
        r.add(at, "INVALID_FORMAT", "consent must be an object.");
        return;
    };
    for key in ["adUserData", "adPersonalization"] {
        if let Some(v) = c.get(key) {
            if !v.as_str().is_some_and(|v| CONSENT.contains(&v)) {
                r.add(format!("{at}.{key}"), "INVALID_ENUM_VALUE", "Unknown consent status.");
            }
        }
    }
}
