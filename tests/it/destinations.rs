//! One business event, every destination: an order paid, refunded and charged back, and a lead
//! qualified, flow to GA4, Meta, Google Ads and LinkedIn simulators, each in its own units,
//! with its own ids and hashing.

use serde_json::json;

use crate::support::{eventually, TestServer};

struct Others {
    meta: surety::platforms::meta::sim::MetaSim,
    google: surety::platforms::google_ads::sim::GoogleAdsSim,
    linkedin: surety::platforms::linkedin::sim::LinkedinSim,
}

async fn start_all() -> (TestServer, Others) {
    let meta = surety::platforms::meta::sim::start().await.unwrap();
    let google = surety::platforms::google_ads::sim::start().await.unwrap();
    let linkedin = surety::platforms::linkedin::sim::start().await.unwrap();
    linkedin.state().set_access_token(Some("li-test-token"));
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        format!("file:{}", path.display())
    };
    let extra = format!(
        r#"
[[destinations]]
name = "meta"
type = "meta"
pixel_id = "1234567890"
access_token = "{meta_token}"
base_url = "{meta_url}"

[[destinations]]
name = "google-ads"
type = "google_ads"
customer_id = "123-456-7890"
service_account_key = "{google_key}"
base_url = "{google_url}"
token_url = "{google_token_url}"
status_poll_delay_secs = 0

[[destinations]]
name = "linkedin"
type = "linkedin"
access_token = "{li_token}"
base_url = "{li_url}"

[catalog.order_paid.meta]
event = "Purchase"
browser_tracked = true   # the pixel sends it too: same event id, Meta keeps one
[catalog.order_paid.google-ads]
event = "111"
[catalog.order_paid.linkedin]
event = "123456"
[catalog.refund_completed.google-ads]
event = "111"
[catalog.chargeback_opened]
google-ads = {{ event = "111" }}
[catalog.lead_qualified.meta]
event = "Lead"
[catalog.lead_qualified.google-ads]
event = "222"
[catalog.lead_qualified.linkedin]
event = "654321"
"#,
        meta_token = secret("meta-token", "meta-test-token"),
        meta_url = meta.base_url,
        google_key = secret("google-key.json", surety::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON),
        google_url = google.base_url,
        google_token_url = google.token_url,
        li_token = secret("li-token", "li-test-token"),
        li_url = linkedin.base_url,
    );
    let s = TestServer::start_custom(dir, ga4, "", &extra).await;
    (s, Others { meta, google, linkedin })
}

fn at(hours_ago: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::hours(hours_ago)
}

async fn all_delivered(s: &TestServer, id: &str) -> Vec<String> {
    let states = s.settled(id).await;
    for st in &states {
        assert!(st.contains(":delivered"), "{id}: {states:?}");
    }
    states
}

#[tokio::test]
async fn an_order_and_a_lead_reach_all_four_platforms_in_their_own_terms() {
    let (s, o) = start_all().await;
    let paid_at = at(20);
    let capture = json!({
        "subject": {"type": "order", "id": "1042"},
        "identity": {"client_id": "555.1042", "session_id": "1700000000", "email": "Jane.Doe@gmail.com",
                     "gclid": "Cj0KCQ-test", "fbp": "fb.1.1700000000.123", "li_fat_id": "li-fat-1",
                     "browser_event_id": "pixel-1042", "country": "DE"},
        "consent": {"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "granted"}
    });
    assert_eq!(s.post("/v1/identities", &capture).await.status(), 202);
    let paid = json!({
        "kind": "order_paid", "occurred_at": paid_at.to_rfc3339(),
        "subject": {"type": "order", "id": "1042"}, "value": 59.9, "currency": "EUR",
        "items": [{"id": "SKU-1", "name": "Linen shirt", "price": 59.9, "quantity": 1}]
    });
    assert_eq!(s.post("/v1/events", &paid).await.status(), 202);
    let states = all_delivered(&s, "order:1042:order_paid").await;
    assert_eq!(states.len(), 4, "{states:?}");

    // GA4: microseconds, the order id as transaction id.
    let ga4 = s.ga4.events_named("purchase");
    assert_eq!(ga4.len(), 1);
    assert_eq!(ga4[0].timestamp_micros, Some(paid_at.timestamp_micros()));
    assert_eq!(ga4[0].params["transaction_id"], "1042");

    // Meta: seconds, the browser pixel's id (captured at checkout), hashed email.
    let meta = o.meta.state().events_named("Purchase");
    assert_eq!(meta.len(), 1, "{meta:?}");
    assert_eq!(meta[0].event_time, paid_at.timestamp());
    assert_eq!(meta[0].event_id.as_deref(), Some("pixel-1042"));
    let em = meta[0].user_data["em"].to_string();
    assert!(em.contains(&surety::core::pii::sha256_hex(b"jane.doe@gmail.com")), "Meta keeps gmail dots: {em}");
    assert_eq!(meta[0].user_data["fbp"], "fb.1.1700000000.123", "fbp is sent unhashed");

    // LinkedIn: milliseconds, a decimal-string amount, the hashed email and the first-party cookie.
    let li = o.linkedin.state().unique_conversions();
    assert_eq!(li.len(), 1);
    assert_eq!(li[0].conversion, "urn:lla:llaPartnerConversion:123456");
    assert_eq!(li[0].conversion_happened_at, paid_at.timestamp_millis());
    assert!(li[0].value.as_ref().unwrap()["amount"].is_string());
    let types: Vec<&str> = li[0].user_ids.iter().map(|(t, _)| t.as_str()).collect();
    assert!(types.contains(&"SHA256_EMAIL") && types.contains(&"LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID"), "{types:?}");

    // Google Ads: the order id as transaction id, the value in the conversion action.
    let g = o.google.state().conversion("111", "1042").expect("conversion 1042");
    assert!((g.value.unwrap_or_default() - 59.9).abs() < 1e-9, "{g:?}");
    assert!(g.has_user_data);

    // A partial refund restates the value in Google Ads and is a GA4 refund.
    let refund = json!({
        "event_id": "re_1", "kind": "refund_completed", "occurred_at": at(2).to_rfc3339(),
        "subject": {"type": "order", "id": "1042"}, "value": 19.9, "currency": "EUR",
        "attributes": {"restated_value": 40.0}
    });
    assert_eq!(s.post("/v1/events", &refund).await.status(), 202);
    all_delivered(&s, "re_1").await;
    let g = o.google.state().conversion("111", "1042").unwrap();
    assert!((g.value.unwrap_or_default() - 40.0).abs() < 1e-9, "restated: {g:?}");
    assert_eq!(s.ga4.events_named("refund").len(), 1);

    // A chargeback retracts the conversion in Google Ads.
    let chargeback = json!({
        "event_id": "dp_1", "kind": "chargeback_opened", "occurred_at": at(1).to_rfc3339(),
        "subject": {"type": "order", "id": "1042"}, "value": 40.0, "currency": "EUR"
    });
    assert_eq!(s.post("/v1/events", &chargeback).await.status(), 202);
    all_delivered(&s, "dp_1").await;
    let g = o.google.state().conversion("111", "1042").unwrap();
    assert_eq!(g.value.unwrap_or_default(), 0.0, "retracted: {g:?}");

    // A qualified lead, joined by lead id, to all four.
    let lead = json!({
        "kind": "lead_qualified", "occurred_at": at(3).to_rfc3339(),
        "subject": {"type": "lead", "id": "L-9"}, "value": 100.0, "currency": "EUR",
        "identity": {"client_id": "777.1", "email": "lead@example.com", "gclid": "Cj0-lead", "li_fat_id": "li-fat-9"},
        "consent": {"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "denied"}
    });
    assert_eq!(s.post("/v1/events", &lead).await.status(), 202);
    assert_eq!(all_delivered(&s, "lead:L-9:lead_qualified").await.len(), 4);
    assert_eq!(o.meta.state().events_named("Lead").len(), 1);
    assert!(o.google.state().conversion("222", "L-9").is_some());
    assert_eq!(o.linkedin.state().unique_conversions().len(), 2);

    // Google's processing status turns "sent" into "accepted".
    eventually("Google Ads reports the requests processed", || async {
        let v = s.event("lead:L-9:lead_qualified").await;
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["destination"] == "google-ads" && d["reason"] == "accepted")
    })
    .await;
}

/// The reason of the delivery of `id` to `destination`, once the platform's processing status
/// has settled it (`accepted`, or `processing_failed` and the like).
async fn google_reason(s: &TestServer, id: &str) -> String {
    let mut last = String::new();
    for _ in 0..1200 {
        let v = s.event(id).await;
        let d = v["deliveries"].as_array().unwrap().iter().find(|d| d["destination"] == "google-ads").cloned();
        last = d
            .map(|d| format!("{}:{}", d["state"].as_str().unwrap_or(""), d["reason"].as_str().unwrap_or("")))
            .unwrap_or_default();
        if !last.starts_with("pending")
            && !last.starts_with("claimed")
            && !last.starts_with("sending")
            && last != "delivered:sent"
        {
            return last;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("{id}: the Google Ads delivery did not settle: {last}");
}

#[tokio::test]
async fn refunds_and_a_chargeback_restate_the_order_from_the_ledger_and_ga4_gets_each_refund() {
    let (s, o) = start_all().await;
    let order = json!({"type": "order", "id": "2042"});
    let identity = json!({"client_id": "555.2042", "email": "jane@example.com", "gclid": "Cj0-2042"});
    let consent = json!({"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "granted"});
    let paid = json!({
        "kind": "order_paid", "occurred_at": at(10).to_rfc3339(), "subject": order, "value": 34.60, "currency": "EUR",
        "identity": identity, "consent": consent,
        "items": [{"id": "SKU-1", "price": 9.90, "quantity": 2}, {"id": "SKU-2", "price": 14.80, "quantity": 1}]
    });
    assert_eq!(s.post("/v1/events", &paid).await.status(), 202);
    let mut steps = Vec::new();
    for (id, kind, amount, hours_ago, items) in [
        ("re_1", "refund_completed", 9.90, 8, json!([{"id": "SKU-1", "price": 9.90, "quantity": 1}])),
        ("re_2", "refund_completed", 9.90, 6, json!([{"id": "SKU-1", "price": 9.90, "quantity": 1}])),
        ("re_3", "refund_completed", 14.80, 4, json!([{"id": "SKU-2", "price": 14.80, "quantity": 1}])),
        ("dp_1", "chargeback_opened", 34.60, 2, json!([])),
    ] {
        let e = json!({
            "event_id": id, "kind": kind, "occurred_at": at(hours_ago).to_rfc3339(), "subject": order,
            "value": amount, "currency": "EUR", "identity": identity, "consent": consent, "items": items
        });
        assert_eq!(s.post("/v1/events", &e).await.status(), 202);
        s.settled(id).await;
        let g = o.google.state().conversion("111", "2042").expect("conversion 2042");
        steps.push((id, g.value));
    }
    // Each adjustment carries the order's value minus everything refunded so far, exactly.
    assert_eq!(
        steps,
        vec![("re_1", Some(24.70)), ("re_2", Some(14.80)), ("re_3", Some(0.0)), ("dp_1", Some(0.0))],
        "restated values"
    );
    // None is refused as a duplicate: Google's processing status accepts each one sent, and the
    // chargeback after the full refund is not sent at all.
    for id in ["order:2042:order_paid", "re_1", "re_2", "re_3"] {
        assert_eq!(google_reason(&s, id).await, "delivered:accepted", "{id}");
    }
    assert_eq!(google_reason(&s, "dp_1").await, "skipped:already_restated");
    let c = o.google.state().conversion("111", "2042").unwrap();
    assert_eq!((c.adjustments, c.duplicates), (3, 0), "{c:?}");
    // The adjustment names the original conversion: its transactionId and its time.
    let sent: Vec<_> = o
        .google
        .state()
        .received_events()
        .into_iter()
        .filter(|e| e.transaction_id.as_deref() == Some("2042"))
        .collect();
    assert_eq!(sent.len(), 4);
    let first_time = sent[0].event["eventTimestamp"].clone();
    assert!(
        sent.iter().all(|e| e.event["eventTimestamp"] == first_time),
        "every adjustment keeps the conversion's time"
    );
    // The timeline shows the restated value and how it was reached.
    let v = s.event("re_2").await;
    let details: Vec<String> =
        v["attempts"].as_array().unwrap().iter().filter_map(|a| a["detail"].as_str().map(str::to_owned)).collect();
    assert!(details.iter().any(|d| d.contains("34.60 − 9.90 − 9.90 = 14.80 EUR")), "{details:?}");

    // GA4: each refund carries its own amount and the items it refunded.
    let refunds = s.ga4.events_named("refund");
    let values: Vec<&serde_json::Value> = refunds.iter().map(|r| &r.params["value"]).collect();
    assert_eq!(values, vec![&json!(9.9), &json!(9.9), &json!(14.8)], "{refunds:?}");
    assert_eq!(refunds[0].params["items"], json!([{"item_id": "SKU-1", "price": 9.9, "quantity": 1}]));
    assert!(refunds.iter().all(|r| r.params["transaction_id"] == "2042"));
}

#[tokio::test]
async fn a_browser_tracked_purchase_past_metas_dedupe_window_is_skipped_there_and_sent_to_google() {
    let (s, o) = start_all().await;
    for (order, hours_ago) in [("3001", 50), ("3002", 47)] {
        let e = json!({
            "kind": "order_paid", "occurred_at": at(hours_ago).to_rfc3339(),
            "subject": {"type": "order", "id": order}, "value": 20.0, "currency": "EUR",
            "identity": {"client_id": format!("555.{order}"), "email": "jane@example.com", "gclid": format!("Cj0-{order}"),
                         "fbp": "fb.1.1700000000.123", "li_fat_id": "li-fat-1", "browser_event_id": format!("pixel-{order}")},
            "consent": {"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "granted"}
        });
        assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    }
    let old = s.settled("order:3001:order_paid").await;
    assert!(old.contains(&"meta:skipped:browser_tracked".to_owned()), "{old:?}");
    assert!(
        old.contains(&"google-ads:delivered:sent".to_owned())
            || old.contains(&"google-ads:delivered:accepted".to_owned()),
        "{old:?}"
    );
    let v = s.event("order:3001:order_paid").await;
    let meta = v["deliveries"].as_array().unwrap().iter().find(|d| d["destination"] == "meta").unwrap().clone();
    assert!(meta["messages"].to_string().contains("outside the dedupe window"), "{meta}");
    assert!(o.google.state().conversion("111", "3001").is_some());

    let young = all_delivered(&s, "order:3002:order_paid").await;
    assert!(
        young.contains(&"meta:delivered:sent".to_owned()) || young.iter().any(|x| x.starts_with("meta:delivered")),
        "{young:?}"
    );
    let sent = o.meta.state().events_named("Purchase");
    assert_eq!(sent.len(), 1, "only the young one reaches Meta: {sent:?}");
    assert_eq!(sent[0].event_id.as_deref(), Some("pixel-3002"), "with the browser's id");
}
