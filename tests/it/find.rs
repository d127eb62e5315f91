//! Finding an order (`GET /v1/search`, the console's search) by every key a person may have at
//! hand, listing events with filters a page at a time (`GET /v1/events`), and the health line
//! per destination on the console's first screen.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::{eventually, urlencode, TestServer, SEGMENT_WRITE_KEY, SOURCES, STRIPE_SECRET};

fn manifest(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn stripe_event(name: &str, minutes_ago: i64) -> Value {
    let mut v: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest(&format!("tests/fixtures/stripe/{name}.json"))).unwrap(),
    )
    .unwrap();
    v["created"] = json!(chrono::Utc::now().timestamp() - minutes_ago * 60);
    v
}

async fn post_stripe(s: &TestServer, event: &Value) -> Value {
    let body = event.to_string();
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<Sha256>::new_from_slice(STRIPE_SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let signature = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
    let r = s
        .http
        .post(s.url("/v1/webhooks/stripe"))
        .header("content-type", "application/json")
        .header("stripe-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn shopify_case(name: &str) -> Value {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(manifest("tests/vectors/shopify/signatures.json")).unwrap())
            .unwrap();
    cases.into_iter().find(|c| c["name"] == name).unwrap()
}

async fn post_shopify(s: &TestServer, case: &Value) {
    let mut r = s.http.post(s.url("/v1/webhooks/shopify")).body(case["body"].as_str().unwrap().to_owned());
    for (k, v) in case["headers"].as_object().unwrap() {
        r = r.header(k, v.as_str().unwrap());
    }
    r = r.header("X-Shopify-Hmac-Sha256", case["hmac_header"].as_str().unwrap());
    assert_eq!(r.send().await.unwrap().status(), 200);
}

/// `GET /v1/search?q=`: the subjects found (`type:id by how`) and the event ids, in order.
async fn find(s: &TestServer, q: &str) -> (Vec<String>, Vec<String>, String) {
    let r = s.get_admin(&format!("/v1/search?q={}", urlencode(q))).await;
    assert_eq!(r.status(), 200, "search {q}");
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let matches = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{} by {}",
                m["subject"]["type"].as_str().unwrap(),
                m["subject"]["id"].as_str().unwrap(),
                m["by"].as_str().unwrap()
            )
        })
        .collect();
    let events = v["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect();
    (matches, events, text)
}

#[tokio::test]
async fn search_finds_an_order_by_each_key_a_person_has_and_nothing_by_an_email_never_sent() {
    let s = TestServer::start_with(SOURCES).await;

    // Stripe: the payment (order ord_1, pi_…, a receipt email), its refund (re_…), its dispute.
    post_stripe(&s, &stripe_event("payment_intent_succeeded", 60)).await;
    let mut refunded = stripe_event("charge_refunded", 30);
    refunded["data"]["object"]["refunds"] = json!({"data": [{"id": "re_3PBtestRelay0001", "amount": 1000}]});
    let r = post_stripe(&s, &refunded).await;
    assert_eq!(r["events"][0]["event_id"], "order:ord_1:refund_completed:re_3PBtestRelay0001");
    post_stripe(&s, &stripe_event("charge_dispute_created", 10)).await;
    let ord_1 = [
        "order:ord_1:order_paid",
        "order:ord_1:refund_completed:re_3PBtestRelay0001",
        "order:ord_1:chargeback_opened:dp_1PBtestRelay0001",
    ];

    // Shopify: an order with a gclid, by its 64-bit id and its webhook id.
    let paid = shopify_case("valid_orders_paid");
    post_shopify(&s, &paid).await;
    let webhook_id = paid["headers"]["X-Shopify-Webhook-Id"].as_str().unwrap();

    // Segment: order 1042 named in the properties, a messageId, a phone in the traits.
    let batch = json!({"batch": [{
        "type": "track", "event": "Order Completed", "messageId": "msg-1042", "userId": "u-1042",
        "timestamp": (chrono::Utc::now() - chrono::Duration::minutes(20)).to_rfc3339(),
        "properties": {"order_id": "1042", "revenue": 42.0, "currency": "EUR"},
        "context": {"traits": {"phone": "+49 151 23456789"}}
    }]});
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{SEGMENT_WRITE_KEY}:")));
    let r = s.http.post(s.url("/v1/batch")).header("authorization", basic).json(&batch).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // The API: order 1043 with a Meta click (fbc carries the fbclid).
    let mut e = crate::support::purchase("1043", 1);
    e["identity"]["fbc"] = json!("fb.1.1700000000000.IwAR1043ClickId");
    assert_eq!(s.post("/v1/events", &json!({"events": [e]})).await.status(), 200);

    let cases: &[(&str, &str, &[&str])] = &[
        ("event id", "order:ord_1:order_paid", &ord_1),
        ("subject id", "ord_1", &ord_1),
        ("subject", "order:ord_1", &ord_1),
        ("stripe payment intent", "pi_3PBtestRelay0001", &ord_1),
        ("stripe event", "evt_1PBtestRelay0003", &ord_1),
        ("stripe refund", "re_3PBtestRelay0001", &ord_1),
        ("email (another case)", "  John.Doe@EXAMPLE.com", &ord_1),
        ("shopify order id", "5630812345678901234", &["order:5630812345678901234:order_paid"]),
        ("shopify webhook id", webhook_id, &["order:5630812345678901234:order_paid"]),
        ("gclid", "Cj0KCQjwSuretyTestGclid123", &["order:5630812345678901234:order_paid"]),
        ("segment messageId", "msg-1042", &["msg-1042"]),
        ("order id in segment properties", "1042", &["msg-1042"]),
        ("order:1042", "order:1042", &["msg-1042"]),
        ("phone (written differently)", "0049-151-234-567-89", &["msg-1042"]),
        ("fbclid", "IwAR1043ClickId", &["order:1043:order_paid"]),
    ];
    for (what, q, expected) in cases {
        let (matches, events, text) = find(&s, q).await;
        assert_eq!(events, expected.to_vec(), "{what}: every event of the subject in event-time order ({matches:?})");
        assert!(!text.to_lowercase().contains("john.doe"), "no personal value in an answer");
    }
    let (matches, ..) = find(&s, "john.doe@example.com").await;
    assert_eq!(matches, ["order:ord_1 by email"]);

    // Each event comes with its deliveries.
    let v: Value = s.get_admin("/v1/search?q=ord_1").await.json().await.unwrap();
    assert_eq!(v["events"][0]["deliveries"][0]["destination"], "ga4-web");

    // A raw email never sent finds nothing; a blank query is refused with a stable code.
    let (matches, events, _) = find(&s, "never.sent@example.com").await;
    assert!(matches.is_empty() && events.is_empty(), "{matches:?}");
    let r = s.get_admin("/v1/search?q=%20").await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_query");
    // Admin only.
    let r = s.http.get(s.url("/v1/search?q=ord_1")).bearer_auth(crate::support::INGEST_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // The console: the search box's results view.
    let page = s
        .http
        .get(s.url("/?view=search&q=pi_3PBtestRelay0001"))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("order:ord_1:refund_completed:re_3PBtestRelay0001"), "{page}");
    assert!(page.contains("by alias"), "{page}");
}

#[tokio::test]
async fn the_event_list_filters_by_kind_delivery_and_time_and_pages_with_a_cursor() {
    let s = TestServer::start().await;
    let mut events = Vec::new();
    for i in 0..7 {
        let mut e = crate::support::purchase(&format!("L{i}"), 2);
        if i % 3 == 0 {
            e["kind"] = json!("lead_qualified");
        }
        events.push(e);
    }
    // One with consent for analytics denied: GA4 skips it.
    let mut denied = crate::support::purchase("L-denied", 2);
    denied["consent"]["analytics"] = json!("denied");
    events.push(denied);
    // One that occurred three days ago.
    events.push(crate::support::purchase("L-old", 72));
    assert_eq!(s.post("/v1/events", &json!({"events": events})).await.status(), 200);
    let denied_state = s.settled("order:L-denied:order_paid").await;
    for i in 0..7 {
        let kind = if i % 3 == 0 { "lead_qualified" } else { "order_paid" };
        s.settled(&format!("order:L{i}:{kind}")).await;
    }

    let list = |q: String| {
        let s = &s;
        async move {
            let r = s.get_admin(&format!("/v1/events?{q}")).await;
            assert_eq!(r.status(), 200, "{q}");
            let v: Value = r.json().await.unwrap();
            let ids: Vec<String> =
                v["events"].as_array().unwrap().iter().map(|e| e["event_id"].as_str().unwrap().to_owned()).collect();
            (ids, v["next_cursor"].as_str().map(str::to_owned))
        }
    };

    let (ids, next) = list("kind=lead_qualified".into()).await;
    assert_eq!(ids, ["order:L6:lead_qualified", "order:L3:lead_qualified", "order:L0:lead_qualified"], "newest first");
    assert_eq!(next, None);

    // The denied one, by its delivery's state and reason (at GA4).
    let (_, state, reason) = {
        let parts: Vec<&str> = denied_state[0].split(':').collect();
        (parts[0].to_owned(), parts[1].to_owned(), parts.get(2).map(|r| r.to_string()).unwrap_or_default())
    };
    let (ids, _) = list(format!("destination=ga4-web&state={state}&reason={reason}")).await;
    assert_eq!(ids, ["order:L-denied:order_paid"]);
    let (ids, _) = list("destination=nowhere".into()).await;
    assert!(ids.is_empty());

    // Time: only what occurred in the last day.
    let since = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let (ids, _) = list(format!("since={}&limit=500", urlencode(&since))).await;
    assert_eq!(ids.len(), 8);
    assert!(!ids.contains(&"order:L-old:order_paid".to_owned()));

    // Pages of two: every event once, newest first, then no cursor.
    let (all, _) = list("limit=500".into()).await;
    assert_eq!(all.len(), 9);
    let mut paged = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_owned(),
        };
        let (ids, next) = list(q).await;
        assert!(ids.len() <= 2);
        paged.extend(ids);
        cursor = next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(paged, all, "the pages add up to the list, in order, each event once");

    for bad in ["cursor=42", "state=lost", "limit=0", "since=yesterday", "color=red"] {
        let r = s.get_admin(&format!("/v1/events?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_query", "{bad}");
    }
    // Admin only, beside ingest's POST on the same path.
    let r = s.http.get(s.url("/v1/events")).bearer_auth(crate::support::INGEST_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.http.get(s.url("/v1/events")).send().await.unwrap().status(), 401);
    // Ingest still posts to the same path.
    assert_eq!(s.post("/v1/events", &crate::support::purchase("L9", 1)).await.status(), 202);
}

#[tokio::test]
async fn the_health_line_says_halted_with_the_platforms_error_and_a_true_next_probe() {
    let linkedin = surety::platforms::linkedin::sim::start().await.unwrap();
    linkedin.state().set_access_token(Some("li-right-token"));
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("li-token");
    std::fs::write(&token, "li-wrong-token").unwrap();
    let extra = format!(
        r#"
[[destinations]]
name = "linkedin"
type = "linkedin"
access_token = "file:{}"
base_url = "{}"

[catalog.order_paid.linkedin]
event = "123456"
"#,
        token.display(),
        linkedin.base_url
    );
    let s = TestServer::start_with(&extra).await;
    let mut e = crate::support::purchase("H1", 1);
    e["identity"]["li_fat_id"] = json!("li-click-H1");
    assert_eq!(s.post("/v1/events", &json!({"events": [e]})).await.status(), 200);

    let page = || async {
        s.http.get(s.url("/")).bearer_auth(crate::support::ADMIN_TOKEN).send().await.unwrap().text().await.unwrap()
    };
    eventually("linkedin halted on the health line", || async {
        page().await.contains("data-destination=\"linkedin\" data-health=\"halted (credentials refused)\"")
    })
    .await;
    let html = page().await;
    let line = html.split("data-destination=\"linkedin\"").nth(1).unwrap().split("</tr>").next().unwrap();
    assert!(line.contains("(halt, "), "the platform's error, marked as a halt, and when: {line}");
    assert!(line.contains("LinkedIn refused the access token"), "what LinkedIn said: {line}");
    assert!(!line.contains("<td>now</td>"), "halted: the next probe is after the halt period, not now: {line}");
    assert!(line.contains(" UTC <span class=\"muted\">(in "), "a next probe in the future: {line}");
    // GA4, beside it, delivers.
    eventually("ga4 delivering on the health line", || async {
        page().await.contains("data-destination=\"ga4-web\" data-health=\"delivering\"")
    })
    .await;
}

async fn cli(args: Vec<String>) -> (i32, String, String) {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_surety"))
            .args(&args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run surety")
    })
    .await
    .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn the_cli_finds_and_lists_what_the_api_does() {
    let s = TestServer::start().await;
    if s.postgres.is_some() {
        return; // the CLI below reads the SQLite file
    }
    assert_eq!(s.post("/v1/events", &crate::support::purchase("C1042", 1)).await.status(), 202);
    s.settled("order:C1042:order_paid").await;
    let config = s.dir.path().join("cli.toml");
    std::fs::write(&config, crate::support::config_toml(&s.db, &s.ga4.base_url, "")).unwrap();
    let config = config.display().to_string();
    let run = |args: &[&str]| {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--config".to_owned(), config.clone()]);
        cli(all)
    };

    let (code, out, err) = run(&["events", "find", "JANE.doe@example.com", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["matches"][0]["subject"]["id"], "C1042");
    assert_eq!(v["matches"][0]["by"], "email");
    assert!(!out.to_lowercase().contains("jane"), "{out}");

    let (code, out, _) = run(&["events", "find", "C1042"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("order:C1042:order_paid") && out.contains("ga4-web"), "{out}");
    let (code, out, _) = run(&["events", "find", "never.sent@example.com"]).await;
    assert_eq!((code, out.trim()), (1, "nothing found"));

    let (code, out, err) = run(&["events", "list", "--kind", "order_paid", "--state", "delivered"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("order:C1042:order_paid") && out.contains("delivered"), "{out}");
    let (code, _, err) = run(&["events", "list", "--cursor", "42"]).await;
    assert_eq!(code, 2);
    assert!(err.contains("cursor:"), "{err}");
}
