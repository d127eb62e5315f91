use std::io::Write;

use serde_json::json;

use super::*;
use crate::config::sources::{default_segment_events, IdentityKeys};
use crate::config::Secret;

fn config() -> SegmentSource {
    SegmentSource {
        write_keys: vec![Secret::try_from("env:UNUSED".to_owned()).unwrap()],
        events: default_segment_events(),
        keys: IdentityKeys::default(),
    }
}

fn now() -> DateTime<Utc> {
    "2026-11-22T12:00:00Z".parse().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_is_recognised_by_header_or_by_its_bytes() {
    let body = br#"{"batch":[]}"#;
    assert_eq!(decode(false, body).unwrap(), body);
    assert_eq!(decode(true, &gzip(body)).unwrap(), body);
    assert_eq!(decode(false, &gzip(body)).unwrap(), body, "gzip labelled as a form still decodes");
    assert!(matches!(decode(true, b"plain"), Err(BodyError::Gzip(_))));
}

#[test]
fn limits_hold_before_and_after_decompression() {
    let big = vec![b' '; MAX_BATCH_BYTES + 1];
    assert_eq!(decode(false, &big), Err(BodyError::TooLarge));
    // A small gzip that inflates beyond the limit (a "zip bomb") is refused too.
    assert_eq!(decode(true, &gzip(&big)), Err(BodyError::TooLarge));
    let message = json!({"type": "track", "event": "x", "properties": {"pad": "a".repeat(MAX_MESSAGE_BYTES)}});
    let body = serde_json::to_vec(&json!({"batch": [{"type": "identify"}, message]})).unwrap();
    assert!(matches!(messages(&body, None), Err(BodyError::MessageTooLarge { index: 1 })));
}

#[test]
fn batch_fields_are_inherited_and_single_calls_take_their_type_from_the_path() {
    let body = br#"{"batch":[{"type":"track","event":"A"},{"type":"track","event":"B","sentAt":"x"}],
                    "sentAt":"2026-11-22T11:59:59Z","writeKey":"wk","context":{"ip":"1.2.3.4"}}"#;
    let r = messages(body, None).unwrap();
    assert_eq!(r.write_key.as_deref(), Some("wk"));
    assert_eq!(r.messages[0]["sentAt"], "2026-11-22T11:59:59Z");
    assert_eq!(r.messages[1]["sentAt"], "x", "a message's own field wins");
    assert_eq!(r.messages[0]["context"]["ip"], "1.2.3.4");
    let r = messages(br#"{"event":"A","userId":"u"}"#, Some("track")).unwrap();
    assert_eq!(r.messages[0]["type"], "track");
    assert!(messages(br#"{"batch":{}}"#, None).is_err());
}

#[test]
fn basic_auth_carries_the_write_key_as_user() {
    let header = format!("Basic {}", STANDARD.encode("wk_123:"));
    assert_eq!(basic_user(Some(&header)).as_deref(), Some("wk_123"));
    assert_eq!(basic_user(Some("Bearer x")), None);
    assert_eq!(basic_user(None), None);
}

#[test]
fn an_order_completed_track_becomes_order_paid_with_the_message_id() {
    let m = json!({
        "type": "track", "event": "Order Completed", "messageId": "msg-1", "userId": "u-1",
        "timestamp": "2026-11-22T10:00:00.250+00:00",
        "properties": {"order_id": "o-1", "revenue": 129.9, "currency": "eur", "ga_client_id": "1.2",
                       "products": [{"product_id": "p1", "name": "Shirt", "price": 64.95, "quantity": 2}]},
        "context": {"ip": "203.0.113.9", "userAgent": "UA", "traits": {"email": "A@B.example",
                    "address": {"country": "DE", "postalCode": "10115"}}}
    });
    let Message::Event(e) = map(&m, &config(), now()).unwrap() else { panic!("not an event") };
    assert_eq!(e["event_id"], "msg-1");
    assert_eq!(e["kind"], "order_paid");
    assert_eq!(e["subject"], json!({"type": "order", "id": "o-1"}));
    assert_eq!(e["occurred_at"], "2026-11-22T10:00:00.250Z");
    assert_eq!(e["value"], json!(129.9));
    assert_eq!(e["currency"], "eur");
    assert_eq!(e["identity"]["user_id"], "u-1");
    assert_eq!(e["identity"]["client_id"], "1.2");
    assert_eq!(e["identity"]["email"], "A@B.example");
    assert_eq!(e["identity"]["postal_code"], "10115");
    assert_eq!(e["identity"]["ip"], "203.0.113.9");
    assert_eq!(e["items"], json!([{"id": "p1", "name": "Shirt", "price": 64.95, "quantity": 2}]));
}

#[test]
fn original_timestamp_is_corrected_by_the_clients_clock_offset() {
    // The client's clock runs 10 minutes fast: it says it sent at 12:10 what we got at 12:00.
    let m = json!({"type": "track", "event": "Order Refunded", "messageId": "m2", "userId": "u",
                   "originalTimestamp": "2026-11-22T12:05:00Z", "sentAt": "2026-11-22T12:10:00Z",
                   "properties": {"order_id": "o-1", "total": 10, "currency": "EUR"}});
    let Message::Event(e) = map(&m, &config(), now()).unwrap() else { panic!() };
    assert_eq!(e["occurred_at"], "2026-11-22T11:55:00.000Z");
}

#[test]
fn identify_feeds_the_bridge_and_other_calls_are_ignored() {
    let m = json!({"type": "identify", "userId": "u-9", "traits": {"email": "x@y.example", "ga_client_id": "9.9",
                   "gender": "Female", "birthday": "1990-01-31T00:00:00.000Z"},
                   "timestamp": "2026-11-22T10:00:00Z"});
    let Message::Capture(c) = map(&m, &config(), now()).unwrap() else { panic!() };
    assert_eq!(c["subject"], json!({"type": "user", "id": "u-9"}));
    assert_eq!(c["identity"]["email"], "x@y.example");
    assert_eq!(c["identity"]["client_id"], "9.9");
    assert_eq!(c["identity"]["gender"], "Female", "normalised and hashed by the canonical parser");
    assert_eq!(c["identity"]["date_of_birth"], "1990-01-31");
    assert!(matches!(map(&json!({"type": "page", "name": "Home"}), &config(), now()).unwrap(), Message::Ignored(_)));
    let unnamed = json!({"type": "track", "event": "Product Viewed", "messageId": "m", "userId": "u"});
    assert!(matches!(map(&unnamed, &config(), now()).unwrap(), Message::Ignored(_)));
}

#[test]
fn a_mapped_track_without_message_id_or_subject_is_invalid() {
    let m = json!({"type": "track", "event": "Order Completed", "properties": {"order_id": "o"}});
    assert_eq!(map(&m, &config(), now()).unwrap_err().field, "messageId");
    let m = json!({"type": "track", "event": "Order Completed", "messageId": "m"});
    assert_eq!(map(&m, &config(), now()).unwrap_err().field, "properties.order_id");
    let m = json!({"type": "track", "event": "Order Completed", "messageId": "m", "userId": "u",
                   "timestamp": "yesterday"});
    assert_eq!(map(&m, &config(), now()).unwrap_err().field, "timestamp");
}

#[test]
fn a_key_named_twice_in_a_message_is_refused_not_resolved_last_wins() {
    let body = br#"{"batch":[{"type":"track","event":"Order Completed","event":"Order Refunded"}]}"#;
    assert_eq!(messages(body, None).err(), Some(BodyError::DuplicateKey("event".into())));
}
