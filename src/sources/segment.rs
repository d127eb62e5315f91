//! The Segment HTTP tracking API, as server SDKs (analytics-python, analytics-node, RudderStack's)
//! speak it: `POST /v1/batch` (and `/v1/track`, `/v1/identify`), a write key as Basic auth user
//! or `writeKey` in the body, bodies that may be gzipped whatever their content type.
//! `track` calls whose name is configured become canonical events with `messageId` as their id;
//! `identify` calls feed the identity bridge under `user:<userId>`.

#![warn(clippy::arithmetic_side_effects)] // money and counts: overflow is refused, never wrapped

use std::collections::BTreeMap;
use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::{decimal, keyed_identity, put, text, MapError};
use crate::config::sources::SegmentSource;
use crate::core::json::JsonError;

/// Largest batch Segment accepts (after decompression).
pub const MAX_BATCH_BYTES: usize = 500 * 1024;
/// Largest single message.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the batch is larger than {MAX_BATCH_BYTES} bytes")]
    TooLarge,
    #[error("the body is gzip but cannot be decompressed: {0}")]
    Gzip(String),
    #[error("the body is not JSON: {0}")]
    Json(String),
    #[error("the key \"{0}\" appears twice in one object; send each key once")]
    DuplicateKey(String),
    #[error("{0}")]
    Shape(String),
    #[error("message {index} is larger than {MAX_MESSAGE_BYTES} bytes")]
    MessageTooLarge { index: usize },
}

/// Decompresses when the body says gzip — by header or by its magic bytes, since one SDK labels
/// gzipped JSON as a form — and refuses anything beyond the batch limit, decompressed or not.
pub fn decode(gzip_header: bool, raw: &[u8]) -> Result<Vec<u8>, BodyError> {
    if !(gzip_header || raw.starts_with(&[0x1f, 0x8b])) {
        return if raw.len() > MAX_BATCH_BYTES { Err(BodyError::TooLarge) } else { Ok(raw.to_vec()) };
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw)
        .take((MAX_BATCH_BYTES as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Gzip(e.to_string()))?;
    if out.len() > MAX_BATCH_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

/// A request's messages, with the batch-level fields they inherit.
pub struct Request {
    pub messages: Vec<Value>,
    pub write_key: Option<String>,
}

/// Splits a decoded body into messages. `endpoint_type` is `None` for `/v1/batch`, else the
/// message type the path implies (`track`, `identify`, …).
pub fn messages(body: &[u8], endpoint_type: Option<&str>) -> Result<Request, BodyError> {
    let value = crate::core::json::parse(body).map_err(|e| match e {
        JsonError::DuplicateKey { key } => BodyError::DuplicateKey(key),
        JsonError::Syntax(e) => BodyError::Json(e.to_string()),
    })?;
    let Value::Object(mut top) = value else {
        return Err(BodyError::Shape("the body must be a JSON object".into()));
    };
    let write_key = text(top.get("writeKey"));
    let mut messages = match endpoint_type {
        None => match top.remove("batch") {
            Some(Value::Array(list)) => list,
            _ => return Err(BodyError::Shape("batch: must be an array of messages".into())),
        },
        Some(t) => {
            top.entry("type").or_insert_with(|| Value::String(t.to_owned()));
            vec![Value::Object(top.clone())]
        }
    };
    for (index, m) in messages.iter_mut().enumerate() {
        let Value::Object(m) = m else {
            return Err(BodyError::Shape(format!("batch[{index}]: must be an object")));
        };
        if encoded_len(m) > MAX_MESSAGE_BYTES {
            return Err(BodyError::MessageTooLarge { index });
        }
        // Batch-level fields apply to every message that does not state its own.
        for key in ["sentAt", "context", "integrations"] {
            if let (false, Some(v)) = (m.contains_key(key), top.get(key)) {
                m.insert(key.to_owned(), v.clone());
            }
        }
    }
    Ok(Request { messages, write_key })
}

/// A message's size as JSON, counted without building the bytes.
fn encoded_len(message: &Map<String, Value>) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, and a JSON value always serialises.
    let _ = serde_json::to_writer(&mut count, message);
    count.0
}

/// The write key from `Authorization: Basic base64("<writeKey>:")`.
pub fn basic_user(authorization: Option<&str>) -> Option<String> {
    let encoded = authorization?.trim().strip_prefix("Basic ").or_else(|| authorization?.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let user = decoded.split(':').next().unwrap_or_default();
    (!user.is_empty()).then(|| user.to_owned())
}

/// What one message turned into.
#[derive(Debug, PartialEq)]
pub enum Message {
    /// Canonical event JSON.
    Event(Value),
    /// Identity capture JSON for the bridge.
    Capture(Value),
    /// Not a business event (a page view, an unmapped track name): counted, not stored.
    Ignored(String),
}

/// Maps one message; `received_at` corrects client clocks with `sentAt`.
pub fn map(message: &Value, config: &SegmentSource, received_at: DateTime<Utc>) -> Result<Message, MapError> {
    let kind_of = message.get("type").and_then(Value::as_str).unwrap_or_default();
    let empty = Map::new();
    let context = message.get("context").and_then(Value::as_object).unwrap_or(&empty);
    let properties = message.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    // An identify's traits are top-level; some SDKs (rudder-python) put them only in the context.
    let traits = match kind_of {
        "identify" => message.get("traits").and_then(Value::as_object).filter(|t| !t.is_empty()),
        _ => None,
    }
    .or_else(|| context.get("traits").and_then(Value::as_object))
    .unwrap_or(&empty);
    let user_id = text(message.get("userId"));
    let anonymous_id = text(message.get("anonymousId"));
    let occurred_at = event_time(message, received_at)?.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    let (mut identity, consent) = keyed_identity(&[properties, traits], &config.keys);
    put(&mut identity, "user_id", user_id.clone());
    put(&mut identity, "ip", text(context.get("ip")));
    put(&mut identity, "user_agent", text(context.get("userAgent")));
    put(&mut identity, "email", text(traits.get("email")));
    put(&mut identity, "phone", text(traits.get("phone")));
    put(&mut identity, "first_name", text(traits.get("firstName")).or_else(|| text(traits.get("first_name"))));
    put(&mut identity, "last_name", text(traits.get("lastName")).or_else(|| text(traits.get("last_name"))));
    put(&mut identity, "gender", text(traits.get("gender")));
    // Segment's `birthday` is an ISO 8601 date, sometimes with a time: the date part is the birthday.
    put(&mut identity, "date_of_birth", text(traits.get("birthday")).map(|b| b.chars().take(10).collect()));
    if let Some(a) = traits.get("address").and_then(Value::as_object) {
        put(&mut identity, "street", text(a.get("street")));
        put(&mut identity, "city", text(a.get("city")));
        put(&mut identity, "region", text(a.get("state")));
        put(&mut identity, "postal_code", text(a.get("postalCode")).or_else(|| text(a.get("postal_code"))));
        put(&mut identity, "country", text(a.get("country")));
    }

    match kind_of {
        "identify" => {
            let subject = match (&user_id, &anonymous_id) {
                (Some(u), _) => json!({"type": "user", "id": u}),
                (None, Some(a)) => json!({"type": "anonymous", "id": a}),
                (None, None) => return Err(MapError::new("userId", "an identify needs a userId or an anonymousId")),
            };
            Ok(Message::Capture(json!({
                "subject": subject, "captured_at": occurred_at, "identity": identity, "consent": consent,
            })))
        }
        "track" => {
            let name = text(message.get("event")).ok_or_else(|| MapError::new("event", "a track needs a name"))?;
            let Some(kind) = config.events.get(&name) else {
                return Ok(Message::Ignored(format!("no kind is configured for the track event '{name}'")));
            };
            let id = text(message.get("messageId"))
                .ok_or_else(|| MapError::new("messageId", "is required: it is the event's id"))?;
            let subject = subject(properties, &user_id, &anonymous_id)?;
            let items: Vec<Value> =
                properties.get("products").and_then(Value::as_array).into_iter().flatten().map(product).collect();
            let mut attributes: BTreeMap<&str, Value> = BTreeMap::from([("segment_event", Value::String(name))]);
            if let Some(a) = anonymous_id {
                attributes.insert("anonymous_id", Value::String(a));
            }
            let mut event = json!({
                "event_id": id,
                "kind": kind,
                "occurred_at": occurred_at,
                "subject": subject,
                "items": items,
                "identity": identity,
                "consent": consent,
                "attributes": attributes,
            });
            let value = ["revenue", "total", "value"].iter().find_map(|k| decimal(properties.get(*k)));
            if let Some(v) = value {
                event["value"] = json!(v);
            }
            if let Some(c) = text(properties.get("currency")) {
                event["currency"] = json!(c);
            }
            Ok(Message::Event(event))
        }
        "" => Err(MapError::new("type", "is missing")),
        other => Ok(Message::Ignored(format!("{other} calls are not business events"))),
    }
}

/// `timestamp` when the client gave one; otherwise `originalTimestamp` shifted by how far the
/// client's clock was off (`receivedAt - sentAt`), as Segment itself does; otherwise arrival.
fn event_time(message: &Value, received_at: DateTime<Utc>) -> Result<DateTime<Utc>, MapError> {
    let time = |field: &str| -> Result<Option<DateTime<Utc>>, MapError> {
        match text(message.get(field)) {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|_| MapError::new(field, "must be an ISO 8601 time with offset")),
        }
    };
    if let Some(t) = time("timestamp")? {
        return Ok(t);
    }
    match (time("originalTimestamp")?, time("sentAt")?) {
        (Some(original), Some(sent)) => original
            .checked_add_signed(received_at.signed_duration_since(sent))
            .ok_or_else(|| MapError::new("sentAt", "is too far from the arrival time")),
        (Some(original), None) => Ok(original),
        _ => Ok(received_at),
    }
}

fn subject(
    properties: &Map<String, Value>,
    user_id: &Option<String>,
    anonymous_id: &Option<String>,
) -> Result<Value, MapError> {
    let from = |t: &str, keys: &[&str]| keys.iter().find_map(|k| text(properties.get(*k))).map(|id| (t.to_owned(), id));
    let (t, id) = from("order", &["order_id", "orderId"])
        .or_else(|| from("lead", &["lead_id", "leadId"]))
        .or_else(|| from("subscription", &["subscription_id", "subscriptionId"]))
        .or_else(|| user_id.clone().map(|u| ("user".into(), u)))
        .or_else(|| anonymous_id.clone().map(|a| ("anonymous".into(), a)))
        .ok_or_else(|| MapError::new("properties.order_id", "names no order, lead, user or anonymous id"))?;
    Ok(json!({"type": t, "id": id}))
}

fn product(p: &Value) -> Value {
    let mut item = Map::new();
    if let Some(id) = text(p.get("product_id")).or_else(|| text(p.get("sku"))).or_else(|| text(p.get("id"))) {
        item.insert("id".into(), Value::String(id));
    }
    if let Some(name) = text(p.get("name")) {
        item.insert("name".into(), Value::String(name));
    }
    if let Some(price) = decimal(p.get("price")) {
        item.insert("price".into(), json!(price));
    }
    if let Some(q) = p.get("quantity").and_then(|q| q.as_i64().or_else(|| q.as_f64().map(|f| f.round() as i64))) {
        item.insert("quantity".into(), json!(q));
    }
    Value::Object(item)
}

#[cfg(test)]
mod tests;
