//! Input that looks acceptable but is not (issue 9): invisible variants of ids, values no
//! platform should get, keys named twice, personal values echoed, a refused Segment batch that
//! still wrote. Each is refused on the API with a named field and a stable code, and nothing is
//! written for it.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{purchase, TestServer, INGEST_TOKEN, SEGMENT_WRITE_KEY, SHOPIFY_SECRET, SOURCES, STRIPE_SECRET};

/// Posts raw bytes as JSON with the ingest token.
async fn post_raw(s: &TestServer, path: &str, body: &str) -> reqwest::Response {
    s.http
        .post(s.url(path))
        .bearer_auth(INGEST_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn problem(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn invisible_variants_of_an_order_id_are_refused_and_only_the_real_order_is_stored() {
    let s = TestServer::start().await;
    for (id, code_point) in
        [("INV-1042\u{200b}", "U+200B"), ("\u{feff}INV-1042", "U+FEFF"), ("INV-\u{202e}2401", "U+202E")]
    {
        let (status, body) = problem(s.post("/v1/events", &purchase(id, 1)).await).await;
        assert_eq!(status, 422, "{id:?}: {body}");
        assert_eq!(body["code"], "invalid_event");
        assert_eq!(body["errors"][0]["field"], "subject.id", "{body}");
        assert_eq!(body["errors"][0]["code"], "invalid_characters", "{body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(code_point), "{body}");
    }
    let mut e = purchase("INV-1042", 1);
    e["event_id"] = json!("INV-1042\u{2028}");
    let (status, body) = problem(s.post("/v1/events", &e).await).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("event_id")), "{body}");
    assert_eq!(s.post("/v1/events", &purchase("INV-1042", 1)).await.status(), 202);
    assert_eq!(s.counts().await.events, 1, "one order, not three");
}

/// A source's own ids go through the same rule: a Segment order id with a BOM is refused and
/// recorded as an invalid receipt, not stored as another order.
#[tokio::test]
async fn a_source_id_with_an_invisible_character_is_recorded_invalid_not_stored() {
    let s = TestServer::start_with(SOURCES).await;
    let batch = json!({"writeKey": SEGMENT_WRITE_KEY, "batch": [
        {"type": "track", "event": "Order Completed", "messageId": "m-1", "userId": "u",
         "properties": {"order_id": "\u{feff}INV-1042", "revenue": 10, "currency": "EUR"}}]});
    let r = s.http.post(s.url("/v1/batch")).json(&batch).send().await.unwrap();
    let (status, body) = problem(r).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_messages")), "{body}");
    let error = &body["results"][0]["errors"][0];
    assert_eq!(
        (error["field"].as_str(), error["code"].as_str()),
        (Some("batch[0].subject.id"), Some("invalid_characters"))
    );
    let invalid: Vec<Value> = s.get_admin("/v1/receipts?source=segment&status=invalid").await.json().await.unwrap();
    assert_eq!(invalid.len(), 1);
    assert_eq!(s.counts().await.events, 0);
}

#[tokio::test]
async fn values_no_platform_should_get_are_refused_with_their_field() {
    let s = TestServer::start().await;
    let cases: [(&str, Value, &str); 5] = [
        ("/value", json!(-100), "value"),
        ("/value", json!(1e18), "value"),
        ("/currency", json!("ZZZ"), "currency"),
        ("/items/0/quantity", json!(i64::MAX), "items[0].quantity"),
        ("/items/0/price", json!(-5), "items[0].price"),
    ];
    for (pointer, bad, field) in cases {
        let mut e = purchase("1", 1);
        *e.pointer_mut(pointer).unwrap() = bad.clone();
        let (status, body) = problem(s.post("/v1/events", &e).await).await;
        assert_eq!(status, 422, "{pointer} = {bad}: {body}");
        assert!(body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{field}: {body}");
    }
    // Two items of i64::MAX each once reached Meta as num_items -2.
    let mut e = purchase("2", 1);
    e["items"] = json!([{"id": "a", "quantity": i64::MAX}, {"id": "b", "quantity": i64::MAX}]);
    assert_eq!(s.post("/v1/events", &e).await.status(), 422);
    assert_eq!(s.counts().await.events, 0);
}

#[tokio::test]
async fn a_key_named_twice_is_refused_naming_the_key_on_every_json_input() {
    let s = TestServer::start_with(SOURCES).await;
    let at = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let event = format!(
        r#"{{"kind":"order_paid","kind":"refund_completed","occurred_at":"{at}","subject":{{"type":"order","id":"1"}}}}"#
    );
    let (status, body) = problem(post_raw(&s, "/v1/events", &event).await).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("duplicate_key")), "{body}");
    assert_eq!(body["errors"][0]["field"], "kind");

    let batch = format!(
        r#"{{"events":[{{"kind":"order_paid","occurred_at":"{at}","subject":{{"type":"order","id":"2","id":"3"}}}}]}}"#
    );
    let (status, body) = problem(post_raw(&s, "/v1/events", &batch).await).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (400, Some("id")), "{body}");

    let capture =
        r#"{"subject":{"type":"user","id":"u"},"identity":{"email":"a@example.com","email":"b@example.com"}}"#;
    let (status, body) = problem(post_raw(&s, "/v1/identities", capture).await).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("duplicate_key")), "{body}");

    let segment = format!(
        r#"{{"writeKey":"{SEGMENT_WRITE_KEY}","batch":[{{"type":"track","event":"Order Completed","messageId":"m-1","messageId":"m-2","userId":"u"}}]}}"#
    );
    let r =
        s.http.post(s.url("/v1/batch")).header("content-type", "application/json").body(segment).send().await.unwrap();
    let (status, body) = problem(r).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("duplicate_key")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("messageId"), "{body}");

    // A signed Stripe body: the signature is valid, the content is still ambiguous.
    let stripe = r#"{"id":"evt_1","type":"charge.refunded","type":"payment_intent.succeeded","created":1}"#;
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{stripe}").as_bytes());
    let r = s
        .http
        .post(s.url("/v1/webhooks/stripe"))
        .header("stripe-signature", format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes())))
        .body(stripe)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("duplicate_key")), "{body}");

    let shopify = r#"{"id":1,"id":2,"currency":"EUR","total_price":"10.00","updated_at":"2026-11-20T10:00:00Z"}"#;
    let mut mac = Hmac::<Sha256>::new_from_slice(SHOPIFY_SECRET.as_bytes()).unwrap();
    mac.update(shopify.as_bytes());
    let r = s
        .http
        .post(s.url("/v1/webhooks/shopify"))
        .header("x-shopify-hmac-sha256", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
        .header("x-shopify-topic", "orders/paid")
        .body(shopify)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("duplicate_key")), "{body}");
    assert_eq!(body["errors"][0]["field"], "id");

    assert_eq!(s.counts().await.events, 0);
}

#[tokio::test]
async fn no_error_about_a_personal_field_quotes_its_value() {
    let s = TestServer::start().await;
    for (field, raw) in [
        ("phone", json!(4917099998888_i64)),
        ("email", json!(4917099998888_i64)),
        ("date_of_birth", json!(19870605)),
        ("postal_code", json!(1043577)),
        ("phone", json!("+49 170 9999 8888 x")),
        ("email", json!("jane.roe.example.org")),
    ] {
        let mut e = purchase("1", 1);
        e["identity"][field] = raw.clone();
        let r = s.post("/v1/events", &e).await;
        assert_eq!(r.status(), 422, "{field}");
        let text = r.text().await.unwrap();
        let shown = raw.as_str().map_or_else(|| raw.to_string(), str::to_owned);
        assert!(!text.contains(&shown), "{field}: the body quotes {shown}: {text}");
        assert!(text.contains(&format!("identity.{field}")), "the field is still named: {text}");
    }
    let r = s
        .post(
            "/v1/identities",
            &json!({"subject": {"type": "user", "id": "u"}, "identity": {"phone": 4917099998888_i64}}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(!r.text().await.unwrap().contains("4917099998888"));
}

/// 10,000 tiny messages that each lack a messageId: once 10,000 receipt rows and an answer
/// several times the request; now one receipt and a short answer.
#[tokio::test]
async fn a_refused_segment_batch_writes_one_receipt_and_answers_in_bounded_size() {
    let s = TestServer::start_with(SOURCES).await;
    let message = json!({"type": "track", "event": "Order Completed"});
    let batch = json!({"writeKey": SEGMENT_WRITE_KEY, "batch": vec![message; 10_000]}).to_string();
    assert!(batch.len() < 500 * 1024, "within Segment's batch limit: {}", batch.len());
    let r =
        s.http.post(s.url("/v1/batch")).header("content-type", "application/json").body(batch).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(text.len() < 16 * 1024, "the answer is bounded: {} bytes", text.len());
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["code"], "invalid_messages");
    assert_eq!(body["results"].as_array().unwrap().len(), 20, "the first 20 are listed");
    assert!(body["detail"].as_str().unwrap().contains("10000"), "{}", body["detail"]);
    let receipts: Vec<Value> = s.get_admin("/v1/receipts?source=segment&limit=10000").await.json().await.unwrap();
    assert_eq!(receipts.len(), 1, "one receipt for the refused batch");
    assert_eq!(receipts[0]["status"], "invalid");
    assert_eq!(s.counts().await.events, 0);
}

/// A signed `charge.refunded` whose amounts overflow once wrapped to a 0.01 refund.
#[tokio::test]
async fn a_signed_stripe_refund_with_overflowing_amounts_is_recorded_invalid_not_stored() {
    let s = TestServer::start_with(SOURCES).await;
    let path = format!("{}/tests/fixtures/stripe/charge_refunded.json", env!("CARGO_MANIFEST_DIR"));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["created"] = json!(chrono::Utc::now().timestamp() - 60);
    v["data"]["object"]["amount_refunded"] = json!(i64::MIN);
    v["data"]["previous_attributes"]["amount_refunded"] = json!(i64::MAX);
    let body = v.to_string();
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let r = s
        .http
        .post(s.url("/v1/webhooks/stripe"))
        .header("stripe-signature", format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes())))
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("unmappable_event")), "{body}");
    assert_eq!(body["errors"][0]["field"], "data.object.amount_refunded");
    assert_eq!(s.counts().await.events, 0);
}
