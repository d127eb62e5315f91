//! The simulator's reading of LinkedIn's conversion schema, written apart from the adapter's
//! checks so that a mistake in one shows against the other.
//!
//! Two layers, as Rest.li services have them: the schema (types, required and unknown fields),
//! checked for the whole request before anything is kept — a violation anywhere refuses the
//! request with 422 and every violation listed by path — and the values (rule URN, the 90-day
//! window, decimal amounts, hash formats), checked per element, each answering its own status.
//! Which rule sits in which layer is this simulator's model: LinkedIn documents the answers,
//! not the split.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};

/// LinkedIn keeps conversions up to 90 days old.
pub const WINDOW_DAYS: i64 = 90;

/// How far ahead of the simulator's clock a conversion may lie (unconfirmed: clock skew).
pub const FUTURE_TOLERANCE_MINUTES: i64 = 60;

/// `idType` values LinkedIn documents.
pub const ID_TYPES: [&str; 7] = [
    "SHA256_EMAIL",
    "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
    "ACXIOM_ID",
    "ORACLE_MOAT_ID",
    "PLAINTEXT_IP_ADDRESS",
    "SHA256_IP_ADDRESS",
    "GOOGLE_AID",
];

/// One broken rule: a JSON-pointer-like path inside the element (`/conversionValue/amount`)
/// and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub message: String,
}

fn v(path: &str, message: &str) -> Violation {
    Violation { path: path.to_owned(), message: message.to_owned() }
}

/// Type and field violations of one element.
pub fn schema(element: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(e) = element.as_object() else {
        return vec![v("", "the element must be a record")];
    };
    unknown_fields("", e, &["conversion", "conversionHappenedAt", "conversionValue", "eventId", "user"], &mut out);
    required(e, "", "conversion", Value::is_string, "string", &mut out);
    required(e, "", "conversionHappenedAt", Value::is_i64, "long", &mut out);
    optional(e, "", "eventId", Value::is_string, "string", &mut out);
    if let Some(value) = e.get("conversionValue") {
        match value.as_object() {
            Some(cv) => {
                unknown_fields("/conversionValue", cv, &["currencyCode", "amount"], &mut out);
                required(cv, "/conversionValue", "currencyCode", Value::is_string, "string", &mut out);
                required(cv, "/conversionValue", "amount", Value::is_string, "string", &mut out);
            }
            None => out.push(v("/conversionValue", "must be a record")),
        }
    }
    match e.get("user") {
        None => out.push(v("/user", "field is required but not found and has no default value")),
        Some(Value::Object(user)) => user_schema(user, &mut out),
        Some(_) => out.push(v("/user", "must be a record")),
    }
    out
}

fn user_schema(user: &Map<String, Value>, out: &mut Vec<Violation>) {
    unknown_fields("/user", user, &["userIds", "userInfo", "externalIds"], out);
    match user.get("userIds") {
        None => out.push(v("/user/userIds", "field is required but not found and has no default value")),
        Some(Value::Array(ids)) => {
            for (i, id) in ids.iter().enumerate() {
                let at = format!("/user/userIds/{i}");
                let Some(id) = id.as_object() else {
                    out.push(v(&at, "must be a record"));
                    continue;
                };
                unknown_fields(&at, id, &["idType", "idValue"], out);
                required(id, &at, "idType", Value::is_string, "string", out);
                required(id, &at, "idValue", Value::is_string, "string", out);
                if let Some(t) = id.get("idType").and_then(Value::as_str) {
                    if !ID_TYPES.contains(&t) {
                        out.push(v(&format!("{at}/idType"), &format!("'{t}' is not an enum symbol of IdType")));
                    }
                }
            }
        }
        Some(_) => out.push(v("/user/userIds", "must be an array")),
    }
    if let Some(info) = user.get("userInfo") {
        match info.as_object() {
            Some(info) => {
                let at = "/user/userInfo";
                unknown_fields(at, info, &["firstName", "lastName", "title", "companyName", "countryCode"], out);
                required(info, at, "firstName", Value::is_string, "string", out);
                required(info, at, "lastName", Value::is_string, "string", out);
                for key in ["title", "companyName", "countryCode"] {
                    optional(info, at, key, Value::is_string, "string", out);
                }
            }
            None => out.push(v("/user/userInfo", "must be a record")),
        }
    }
}

fn unknown_fields(at: &str, object: &Map<String, Value>, known: &[&str], out: &mut Vec<Violation>) {
    for key in object.keys().filter(|k| !known.contains(&k.as_str())) {
        out.push(v(&format!("{at}/{key}"), "unrecognized field found but not allowed"));
    }
}

fn required(o: &Map<String, Value>, at: &str, key: &str, ok: fn(&Value) -> bool, ty: &str, out: &mut Vec<Violation>) {
    match o.get(key) {
        None => out.push(v(&format!("{at}/{key}"), "field is required but not found and has no default value")),
        Some(value) if !ok(value) => out.push(v(&format!("{at}/{key}"), &format!("{value} is not a {ty}"))),
        Some(_) => {}
    }
}

fn optional(o: &Map<String, Value>, at: &str, key: &str, ok: fn(&Value) -> bool, ty: &str, out: &mut Vec<Violation>) {
    if o.contains_key(key) {
        required(o, at, key, ok, ty, out);
    }
}

/// Value violations of an element that passed [`schema`], judged at `now`.
pub fn values(element: &Value, now: DateTime<Utc>) -> Vec<Violation> {
    let mut out = Vec::new();
    let text = |pointer: &str| element.pointer(pointer).and_then(Value::as_str);
    let rule = text("/conversion").and_then(|c| c.strip_prefix("urn:lla:llaPartnerConversion:"));
    if !rule.is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())) {
        out.push(v("/conversion", "must be a conversion URN urn:lla:llaPartnerConversion:{id}"));
    }
    if let Some(at) = element.pointer("/conversionHappenedAt").and_then(Value::as_i64) {
        let oldest = (now - Duration::days(WINDOW_DAYS)).timestamp_millis();
        let newest = (now + Duration::minutes(FUTURE_TOLERANCE_MINUTES)).timestamp_millis();
        if at < oldest {
            out.push(v("/conversionHappenedAt", "must be within the past 90 days (epoch milliseconds)"));
        } else if at > newest {
            out.push(v("/conversionHappenedAt", "must not be in the future"));
        }
    }
    if let Some(code) = text("/conversionValue/currencyCode") {
        if !(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())) {
            out.push(v("/conversionValue/currencyCode", "must be an ISO 4217 currency code"));
        }
    }
    if let Some(amount) = text("/conversionValue/amount") {
        let (whole, fraction) = amount.split_once('.').unwrap_or((amount, "0"));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(whole) && digits(fraction)) {
            out.push(v("/conversionValue/amount", "must be a non-negative decimal string such as \"100.05\""));
        }
    }
    if text("/eventId").is_some_and(|id| id.trim().is_empty()) {
        out.push(v("/eventId", "must not be empty"));
    }
    let ids = element.pointer("/user/userIds").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for (i, id) in ids.iter().enumerate() {
        let t = id.get("idType").and_then(Value::as_str).unwrap_or_default();
        let value = id.get("idValue").and_then(Value::as_str).unwrap_or_default();
        let hex64 = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
        let bad = match t {
            "SHA256_EMAIL" | "SHA256_IP_ADDRESS" => (!hex64).then_some("must be a SHA-256 hex digest (64 characters)"),
            "PLAINTEXT_IP_ADDRESS" => value.parse::<std::net::IpAddr>().is_err().then_some("must be an IP address"),
            _ => value.trim().is_empty().then_some("must not be empty"),
        };
        if let Some(why) = bad {
            out.push(v(&format!("/user/userIds/{i}/idValue"), why));
        }
    }
    if ids.is_empty() && element.pointer("/user/userInfo").is_none() {
        out.push(v("/user", "needs at least one userId, or userInfo with firstName and lastName"));
    }
    out
}
