use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::*;
use crate::config::sources::{default_shopify_topics, IdentityKeys};
use crate::config::Secret;

fn config() -> ShopifySource {
    ShopifySource {
        signing_secret: Secret::try_from("env:UNUSED".to_owned()).unwrap(),
        previous_signing_secrets: vec![],
        topics: default_shopify_topics(),
        keys: IdentityKeys::default(),
    }
}

const ORDER: &str = r##"{
  "id": 5630812345678901234, "name": "#1042", "email": "Buyer@Example.com", "currency": "EUR",
  "total_price": "129.90", "current_total_price": "129.90",
  "created_at": "2026-11-18T09:00:00+01:00", "processed_at": "2026-11-18T09:00:00+01:00",
  "updated_at": "2026-11-20T15:30:00+01:00", "cancelled_at": null,
  "browser_ip": "203.0.113.7", "landing_site": "/products/x?gclid=EAIaIQ&utm_source=google",
  "client_details": {"user_agent": "Mozilla/5.0", "browser_ip": "203.0.113.7"},
  "note_attributes": [{"name": "ga_client_id", "value": "555.666"}, {"name": "fbp", "value": "fb.1.1.2"}],
  "customer": {"id": 7390000000000000001, "email": "buyer@example.com", "first_name": "Jo", "last_name": "Doe"},
  "billing_address": {"first_name": "Jo", "last_name": "Doe", "address1": "1 Main St", "city": "Berlin",
                      "province_code": "BE", "zip": "10115", "country_code": "DE"},
  "line_items": [{"id": 13000000000000000001, "product_id": 8000000000000000001, "sku": "TSHIRT-M",
                  "title": "T-shirt", "price": "64.95", "quantity": 2}]
}"##;

fn only_event(m: Mapped) -> (Value, Option<Value>) {
    match m {
        Mapped::Events { mut events, capture, .. } => (events.remove(0), capture),
        Mapped::Ignored(why) => panic!("ignored: {why}"),
    }
}

#[test]
fn a_paid_order_keeps_its_64_bit_id_and_the_payment_time() {
    let body: Value = serde_json::from_str(ORDER).unwrap();
    let (e, capture) = only_event(map("orders/paid", &body, &config()).unwrap());
    assert_eq!(e["kind"], "order_paid");
    assert_eq!(e["subject"], json!({"type": "order", "id": "5630812345678901234"}));
    assert_eq!(e["occurred_at"], "2026-11-20T15:30:00+01:00", "paid at the order's update, not its creation");
    assert_eq!(e["value"], json!(129.9));
    assert_eq!(e["currency"], "EUR");
    assert_eq!(e["identity"]["user_id"], "7390000000000000001");
    assert_eq!(e["identity"]["client_id"], "555.666");
    assert_eq!(e["identity"]["fbp"], "fb.1.1.2");
    assert_eq!(e["identity"]["gclid"], "EAIaIQ", "from the landing page's query");
    assert_eq!(e["identity"]["email"], "Buyer@Example.com", "hashed later, by the canonical parser");
    assert_eq!(e["identity"]["country"], "DE");
    assert_eq!(e["identity"]["user_agent"], "Mozilla/5.0");
    assert_eq!(e["items"], json!([{"id": "TSHIRT-M", "name": "T-shirt", "price": 64.95, "quantity": 2}]));
    assert!(capture.is_some());
}

#[test]
fn a_cancellation_happens_at_cancelled_at() {
    let mut body: Value = serde_json::from_str(ORDER).unwrap();
    body["cancelled_at"] = json!("2026-11-21T08:00:00+01:00");
    body["cancel_reason"] = json!("customer");
    let (e, _) = only_event(map("orders/cancelled", &body, &config()).unwrap());
    assert_eq!(e["kind"], "order_cancelled");
    assert_eq!(e["occurred_at"], "2026-11-21T08:00:00+01:00");
    assert_eq!(e["attributes"]["cancel_reason"], "customer");
}

#[test]
fn a_refund_is_the_money_that_went_back() {
    let body = json!({
        "id": 1010000000000000001u64, "order_id": 5630812345678901234u64,
        "created_at": "2026-11-22T10:00:00+01:00", "processed_at": "2026-11-22T10:00:05+01:00",
        "refund_line_items": [{"quantity": 1, "subtotal": 64.95,
            "line_item": {"sku": "TSHIRT-M", "title": "T-shirt", "price": "64.95", "quantity": 2}}],
        "transactions": [
            {"kind": "refund", "status": "success", "amount": "64.95", "currency": "EUR"},
            {"kind": "refund", "status": "failure", "amount": "64.95", "currency": "EUR"}]
    });
    let (e, capture) = only_event(map("refunds/create", &body, &config()).unwrap());
    assert_eq!(e["kind"], "refund_completed");
    assert_eq!(e["event_id"], "order:5630812345678901234:refund_completed:1010000000000000001");
    assert_eq!(e["subject"]["id"], "5630812345678901234");
    assert_eq!(e["value"], json!(64.95), "only the successful transaction");
    assert_eq!(e["items"], json!([{"id": "TSHIRT-M", "name": "T-shirt", "price": 64.95, "quantity": 1}]));
    assert_eq!(e["occurred_at"], "2026-11-22T10:00:05+01:00");
    assert_eq!(capture, None);
}

#[test]
fn unconfigured_topics_are_ignored() {
    let body: Value = serde_json::from_str(ORDER).unwrap();
    assert!(matches!(map("orders/create", &body, &config()).unwrap(), Mapped::Ignored(_)));
    assert!(map("orders/paid", &json!({"name": "#1"}), &config()).is_err());
}

#[test]
fn the_hmac_header_is_checked_in_full() {
    let body = br#"{"id":1}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(b"shpss_secret").unwrap();
    mac.update(body);
    let header = STANDARD.encode(mac.finalize().into_bytes());
    let secrets = [SecretValue::for_tests("old"), SecretValue::for_tests("shpss_secret")];
    assert_eq!(verify(Some(&header), body, &secrets), Ok(()));
    assert_eq!(verify(Some(&header), br#"{"id":2}"#, &secrets), Err(SignatureError::Mismatch));
    assert_eq!(verify(Some(&header), body, &secrets[..1]), Err(SignatureError::Mismatch));
    assert_eq!(verify(None, body, &secrets), Err(SignatureError::Missing));
    assert_eq!(verify(Some("not base64!"), body, &secrets), Err(SignatureError::Malformed));
    assert_eq!(verify(Some(&STANDARD.encode([1u8; 16])), body, &secrets), Err(SignatureError::Malformed));
}

/// Every case of tests/vectors/shopify/signatures.json, judged by Shopify's official library
/// (scripts/shopify_vectors.mjs), is answered the same way here. The library only says "invalid"
/// where the header is not even base64 of 32 bytes; we say "malformed", which is still a refusal.
#[test]
fn signatures_agree_with_shopifys_library() {
    let path = format!("{}/tests/vectors/shopify/signatures.json", env!("CARGO_MANIFEST_DIR"));
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 10);
    for c in &cases {
        let secrets = [SecretValue::for_tests(c["secret"].as_str().unwrap())];
        let got = verify(
            c["hmac_header"].as_str().filter(|h| !h.is_empty()),
            c["body"].as_str().unwrap().as_bytes(),
            &secrets,
        );
        if c["name"] == "missing_topic_header" {
            // The library refuses it for the missing X-Shopify-Topic; so does the handler, after
            // the HMAC (tested end to end).
            assert_eq!(got, Ok(()));
            continue;
        }
        let want = match c["expect"].as_str().unwrap() {
            "valid" => Ok(()),
            "bad_signature" => Err(SignatureError::Mismatch),
            "missing_header" => Err(SignatureError::Missing),
            "malformed_header" => Err(SignatureError::Malformed),
            other => panic!("unknown expectation {other}"),
        };
        assert_eq!(got, want, "case {}", c["name"]);
    }
}

#[test]
fn the_committed_bodies_map_with_exact_ids() {
    let read = |name: &str| -> Value {
        let path = format!("{}/tests/vectors/shopify/{name}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let raw = std::fs::read_to_string(format!("{}/tests/vectors/shopify/orders_paid.json", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let (paid, _) = only_event(map("orders/paid", &read("orders_paid"), &config()).unwrap());
    let id = paid["subject"]["id"].as_str().unwrap().to_owned();
    assert!(id.parse::<u64>().unwrap() > 1 << 53);
    assert!(raw.contains(&id), "the id is the body's digits, not a float's");
    let (refund, _) = only_event(map("refunds/create", &read("refunds_create"), &config()).unwrap());
    assert_eq!(refund["subject"]["id"], id);
    assert!(refund["value"].as_f64().unwrap() > 0.0);
    let (cancel, _) = only_event(map("orders/cancelled", &read("orders_cancelled"), &config()).unwrap());
    assert_eq!(cancel["kind"], "order_cancelled");
}

#[test]
fn a_body_that_is_not_an_object_is_refused_whatever_the_topic() {
    // An unconfigured topic is ignored, but only a Shopify body (an object) is: an array or a
    // string was never sent by Shopify, so it is refused (and recorded as invalid) on every topic.
    for topic in ["orders/paid", "orders/create", "products/update"] {
        for body in [json!([]), json!("order"), json!(42), Value::Null] {
            match map(topic, &body, &config()) {
                Err(e) => assert_eq!(e.message, "must be a JSON object", "{topic}: {body}"),
                Ok(_) => panic!("{topic}: {body} was taken"),
            }
        }
    }
    assert!(matches!(map("products/update", &json!({}), &config()).unwrap(), Mapped::Ignored(_)));
}
