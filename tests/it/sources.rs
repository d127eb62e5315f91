//! Sources: Stripe and Shopify webhooks verified on the raw body, the Segment tracking API with
//! hand-made requests and with the real SDKs (installed from PyPI and npm by the test).

use std::io::Write;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{TestServer, SEGMENT_WRITE_KEY, SHOPIFY_SECRET, SOURCES, STRIPE_SECRET};

fn manifest(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

/// A Stripe fixture as Stripe would send it now: `created` an hour ago, compact JSON.
/// The checkout also recorded analytics consent in the payment's metadata.
fn stripe_event(name: &str, minutes_ago: i64) -> String {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest(&format!("tests/fixtures/stripe/{name}.json"))).unwrap(),
    )
    .unwrap();
    v["created"] = json!(chrono::Utc::now().timestamp() - minutes_ago * 60);
    if name == "payment_intent_succeeded" {
        v["data"]["object"]["metadata"]["consent_analytics"] = json!("granted");
    }
    v.to_string()
}

fn stripe_signature(body: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_stripe(s: &TestServer, body: &str, signature: Option<String>) -> reqwest::Response {
    let mut r =
        s.http.post(s.url("/v1/webhooks/stripe")).header("content-type", "application/json").body(body.to_owned());
    if let Some(sig) = signature {
        r = r.header("stripe-signature", sig);
    }
    r.send().await.unwrap()
}

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

async fn receipts(s: &TestServer, source: &str) -> Vec<Value> {
    s.get_admin(&format!("/v1/receipts?source={source}")).await.json().await.unwrap()
}

#[tokio::test]
async fn stripe_webhooks_are_verified_mapped_deduplicated_and_joined() {
    let s = TestServer::start_with(SOURCES).await;
    let now = chrono::Utc::now().timestamp();
    let paid = stripe_event("payment_intent_succeeded", 60);

    // Refused before anything is parsed or stored.
    let tampered = paid.replace("2550", "2551");
    assert_eq!(
        code(post_stripe(&s, &tampered, Some(stripe_signature(&paid, now))).await).await,
        (401, "invalid_signature".into())
    );
    assert_eq!(
        code(post_stripe(&s, &paid, Some(stripe_signature(&paid, now - 400))).await).await,
        (401, "stale_signature".into())
    );
    assert_eq!(code(post_stripe(&s, &paid, None).await).await, (400, "missing_signature".into()));
    assert_eq!(code(post_stripe(&s, &paid, Some("t=1,v0=ab".into())).await).await, (400, "malformed_signature".into()));
    assert_eq!(s.counts().await.events, 0, "nothing stored for a refused webhook");
    assert!(receipts(&s, "stripe").await.is_empty());
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for outcome in ["invalid_signature", "stale_signature", "missing_signature", "malformed_signature"] {
        let line = format!("surety_source_messages_total{{source=\"stripe\",outcome=\"{outcome}\"}} 1");
        assert!(metrics.contains(&line), "refusals are counted: {line} not in\n{metrics}");
    }

    let r = post_stripe(&s, &paid, Some(stripe_signature(&paid, now))).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["events"][0]["event_id"], "order:ord_1:order_paid");
    let v = s.event("order:ord_1:order_paid").await;
    assert_eq!(v["event"]["source"], "stripe");
    assert_eq!(v["event"]["value"], 25.5);
    let created = serde_json::from_str::<Value>(&paid).unwrap()["created"].as_i64().unwrap();
    let occurred: chrono::DateTime<chrono::Utc> = v["event"]["occurred_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(occurred.timestamp(), created, "event time is Stripe's, not arrival");

    // Stripe redelivers the same evt_… with a fresh signature: a duplicate.
    let again = post_stripe(&s, &paid, Some(stripe_signature(&paid, now + 5))).await;
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");

    // The refund's charge carries only the order id; the client id comes from the bridge that
    // the payment fed.
    let refunded = stripe_event("charge_refunded", 30);
    let r: Value = post_stripe(&s, &refunded, Some(stripe_signature(&refunded, now))).await.json().await.unwrap();
    let refund_id = r["events"][0]["event_id"].as_str().unwrap().to_owned();
    assert_eq!(refund_id, "order:ord_1:refund_completed:ch_3PBtestRelay0001@1000");
    let v = s.event(&refund_id).await;
    assert_eq!(v["event"]["value"], 10.0);
    assert_eq!(v["event"]["identity"]["client_id"], "123456789.1714564000");
    assert!(v["event"]["joined"].as_array().unwrap().contains(&json!("identity.client_id")));

    // The dispute names only the payment intent: the alias recorded with the payment finds the
    // order, and the chargeback joins the order's identity.
    let dispute = stripe_event("charge_dispute_created", 10);
    let r: Value = post_stripe(&s, &dispute, Some(stripe_signature(&dispute, now))).await.json().await.unwrap();
    assert_eq!(r["events"][0]["event_id"], "order:ord_1:chargeback_opened:dp_1PBtestRelay0001");
    let v = s.event("order:ord_1:chargeback_opened:dp_1PBtestRelay0001").await;
    assert_eq!(v["event"]["identity"]["client_id"], "123456789.1714564000");

    // A type no kind is configured for: 200 so Stripe stops, recorded, never routed.
    let other =
        paid.replace("payment_intent.succeeded", "customer.created").replace("evt_3PBtestRelay0001", "evt_other");
    let r: Value = post_stripe(&s, &other, Some(stripe_signature(&other, now))).await.json().await.unwrap();
    assert_eq!(r["status"], "ignored");
    assert_eq!(s.counts().await.events, 3);

    let list = receipts(&s, "stripe").await;
    let find = |id: &str| list.iter().find(|r| r["receipt_id"] == id).cloned().unwrap();
    assert_eq!(find("evt_3PBtestRelay0001")["times"], 2, "the redelivery is counted");
    assert_eq!(find("evt_3PBtestRelay0001")["status"], "mapped");
    assert_eq!(find("evt_other")["status"], "ignored");

    // And the payment reaches GA4 once.
    assert_eq!(s.settled("order:ord_1:order_paid").await, vec!["ga4-web:delivered:sent".to_owned()]);
    assert_eq!(s.settled(&refund_id).await, vec!["ga4-web:delivered:sent".to_owned()], "consent joined too");
    assert_eq!(s.ga4.event_count(), 2, "the payment and its refund, each once");
}

fn shopify_case(name: &str) -> Value {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(manifest("tests/vectors/shopify/signatures.json")).unwrap())
            .unwrap();
    cases.into_iter().find(|c| c["name"] == name).unwrap()
}

async fn post_shopify(s: &TestServer, case: &Value, body: Option<&str>, drop: &[&str]) -> reqwest::Response {
    let mut r =
        s.http.post(s.url("/v1/webhooks/shopify")).body(body.unwrap_or(case["body"].as_str().unwrap()).to_owned());
    for (k, v) in case["headers"].as_object().unwrap() {
        if !drop.contains(&k.as_str()) {
            r = r.header(k, v.as_str().unwrap());
        }
    }
    if let Some(h) = case["hmac_header"].as_str() {
        r = r.header("X-Shopify-Hmac-Sha256", h);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn shopify_webhooks_keep_64_bit_ids_and_take_a_refund_before_its_order() {
    let s = TestServer::start_with(SOURCES).await;
    let (paid, refund, cancelled) = (
        shopify_case("valid_orders_paid"),
        shopify_case("valid_refunds_create"),
        shopify_case("valid_orders_cancelled"),
    );

    assert_eq!(paid["secret"], SHOPIFY_SECRET, "the server is configured with the vectors' secret");
    let tampered = paid["body"].as_str().unwrap().replace("Zoe", "Zed");
    assert_eq!(code(post_shopify(&s, &paid, Some(&tampered), &[]).await).await, (401, "invalid_signature".into()));
    assert_eq!(code(post_shopify(&s, &paid, None, &["X-Shopify-Topic"]).await).await, (400, "missing_topic".into()));
    let mut unsigned = paid.clone();
    unsigned["hmac_header"] = Value::Null;
    assert_eq!(code(post_shopify(&s, &unsigned, None, &[]).await).await, (400, "missing_signature".into()));
    assert_eq!(s.counts().await.events, 0);

    // The refund arrives first: kept (and delivered with the identity it has).
    let r: Value = post_shopify(&s, &refund, None, &[]).await.json().await.unwrap();
    assert_eq!(r["status"], "accepted");
    assert_eq!(r["events"][0]["event_id"], "order:5630812345678901234:refund_completed:1876543210987654321");

    let r: Value = post_shopify(&s, &paid, None, &[]).await.json().await.unwrap();
    assert_eq!(r["status"], "accepted");
    let v = s.event("order:5630812345678901234:order_paid").await;
    assert_eq!(v["event"]["subject"]["id"], "5630812345678901234", "exact, not 5630812345678901000");
    assert_eq!(v["event"]["identity"]["client_id"], "1234567890.1714650000", "from the _ga cart attribute");
    assert_eq!(v["event"]["identity"]["gclid"], "Cj0KCQjwSuretyTestGclid123");
    let email = v["event"]["identity"]["email"]["google"].as_str().unwrap();
    assert_eq!(email.len(), 64, "email stored hashed");

    // Shopify redelivers with the same webhook id.
    let r: Value = post_shopify(&s, &paid, None, &[]).await.json().await.unwrap();
    assert_eq!(r["status"], "duplicate");
    let r: Value = post_shopify(&s, &cancelled, None, &[]).await.json().await.unwrap();
    assert_eq!(r["status"], "accepted");
    assert_eq!(s.counts().await.events, 3);

    let list = receipts(&s, "shopify").await;
    let webhook_id = paid["headers"]["X-Shopify-Webhook-Id"].as_str().unwrap();
    let receipt = list.iter().find(|r| r["receipt_id"] == webhook_id).unwrap();
    assert_eq!(receipt["times"], 2);
    assert_eq!(receipt["topic"], "orders/paid");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn basic(key: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{key}:")))
}

#[tokio::test]
async fn the_segment_api_takes_batches_as_sdks_send_them() {
    let s = TestServer::start_with(SOURCES).await;
    let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();

    let identify = json!({"userId": "u-1", "traits": {"email": "Buyer@Example.com"}, "timestamp": hour_ago});
    let r = s
        .http
        .post(s.url("/v1/identify"))
        .header("authorization", basic(SEGMENT_WRITE_KEY))
        .json(&identify)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let batch = json!({
        "writeKey": SEGMENT_WRITE_KEY,
        "sentAt": chrono::Utc::now().to_rfc3339(),
        "batch": [
            {"type": "track", "event": "Order Completed", "messageId": "m-1", "userId": "u-1", "timestamp": hour_ago,
             "properties": {"order_id": "o-1", "revenue": 129.9, "currency": "EUR", "ga_client_id": "11.22"}},
            {"type": "page", "name": "Home", "messageId": "m-2", "userId": "u-1"},
            {"type": "track", "event": "Order Refunded", "userId": "u-1", "properties": {"order_id": "o-1"}}
        ]
    });
    // Gzipped and labelled as a form, with the key only in the body, as rudder-node does.
    let send = |body: Vec<u8>| {
        s.http
            .post(s.url("/v1/batch"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    let r = send(gzip(batch.to_string().as_bytes())).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["accepted"].as_u64(), body["ignored"].as_u64(), body["invalid"].as_u64()),
        (Some(1), Some(1), Some(1))
    );

    let v = s.event("m-1").await;
    assert_eq!(v["event"]["kind"], "order_paid");
    assert_eq!(v["event"]["source"], "segment");
    assert_eq!(v["event"]["subject"], json!({"type": "order", "id": "o-1"}));
    assert!(
        v["event"]["joined"].as_array().unwrap().contains(&json!("identity.email")),
        "the identify's email joined by user id: {v}"
    );
    let invalid = s.get_admin("/v1/receipts?source=segment&status=invalid").await.json::<Vec<Value>>().await.unwrap();
    assert_eq!(invalid.len(), 1);
    assert!(invalid[0]["detail"].as_str().unwrap().contains("messageId"));

    // The same batch again: the order is a duplicate.
    let body: Value = send(gzip(batch.to_string().as_bytes())).await.unwrap().json().await.unwrap();
    assert_eq!(body["duplicate"], 1);

    let mut wrong = batch.clone();
    wrong["writeKey"] = json!("nope");
    assert_eq!(code(send(gzip(wrong.to_string().as_bytes())).await.unwrap()).await, (401, "invalid_write_key".into()));
    let r = s.http.post(s.url("/v1/batch")).header("authorization", basic("nope")).json(&batch).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let huge = json!({"writeKey": SEGMENT_WRITE_KEY, "batch": [{"type": "track", "event": "x", "properties": {"pad": "a".repeat(600 * 1024)}}]});
    assert_eq!(code(send(gzip(huge.to_string().as_bytes())).await.unwrap()).await, (400, "batch_too_large".into()));
    assert_eq!(s.counts().await.events, 1);
}

/// Runs one SDK's send script against the server; returns what it printed.
async fn run_sdk(program: &str, args: &[&str], sdk_dir: &str) -> Value {
    let out = tokio::process::Command::new(program)
        .args(args)
        .env("SURETY_SDK_DIR", sdk_dir)
        .env("SURETY_SDK_RETRIES", "2")
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().to_owned();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{program} printed {line:?}: {e}"))
}

/// The real server SDKs — segment-analytics-python, rudder-sdk-python, @segment/analytics-node,
/// @rudderstack/rudder-sdk-node — installed from PyPI and npm (scripts/install_sdks.sh, cached
/// under target/), each send an identify, an order and a refund that Surety must store exactly.
#[tokio::test]
async fn real_segment_and_rudderstack_sdks_deliver_to_surety() {
    let sdk_dir = format!("{}/sdk", env!("CARGO_TARGET_TMPDIR"));
    let install = tokio::process::Command::new("bash")
        .arg(manifest("scripts/install_sdks.sh"))
        .arg(&sdk_dir)
        .output()
        .await
        .expect("run scripts/install_sdks.sh");
    assert!(
        install.status.success(),
        "installing the SDKs from PyPI and npm failed (needs python3, node, npm and the registries):\n{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let s = TestServer::start_with(SOURCES).await;
    let python = format!("{sdk_dir}/venv/bin/python");
    let (send_py, send_js) = (manifest("tests/sdk/send_python.py"), manifest("tests/sdk/send_node.mjs"));
    let runs = [
        (python.as_str(), send_py.as_str(), "segment"),
        (python.as_str(), send_py.as_str(), "rudder"),
        ("node", send_js.as_str(), "segment"),
        ("node", send_js.as_str(), "rudder"),
    ];
    for (i, (program, script, sdk)) in runs.into_iter().enumerate() {
        let run_id = format!("r{i}{sdk}");
        let printed = run_sdk(program, &[script, sdk, &s.base, SEGMENT_WRITE_KEY, &run_id], &sdk_dir).await;
        let ids = &printed["message_ids"];
        let order = s.event(ids["order_completed"].as_str().unwrap()).await;
        let e = &order["event"];
        assert_eq!(e["kind"], "order_paid", "{sdk} via {program}: {order}");
        assert_eq!(e["source"], "segment");
        assert_eq!(e["subject"], json!({"type": "order", "id": printed["order_id"]}));
        assert_eq!(e["value"], 129.9);
        assert_eq!(e["currency"], "EUR");
        assert_eq!(e["identity"]["user_id"], printed["user_id"]);
        assert_eq!(e["identity"]["email"]["google"].as_str().map(str::len), Some(64), "{sdk}: email hashed");
        let sent: chrono::DateTime<chrono::FixedOffset> =
            chrono::DateTime::parse_from_rfc3339(printed["order_completed_timestamp"].as_str().unwrap()).unwrap();
        let stored: chrono::DateTime<chrono::Utc> = e["occurred_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(stored.timestamp(), sent.timestamp(), "{sdk} via {program}: the SDK's event time, not arrival");
        assert_eq!(e["items"].as_array().map(Vec::len), Some(2));
        let refund = s.event(ids["order_refunded"].as_str().unwrap()).await;
        assert_eq!(refund["event"]["kind"], "refund_completed");
        assert_eq!(refund["event"]["value"], 29.9);
    }
    assert_eq!(s.counts().await.events, 8);
}
