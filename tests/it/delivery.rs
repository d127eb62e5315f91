//! Delivery: GA4 payloads from stored events, retries with backoff, dead letters, replays (G3),
//! the time window (G5) and conservation of counts (G6).

use std::time::Duration;

use serde_json::{json, Value};
use surety::core::DeliveryState;
use surety::sim::Fault;

use crate::support::{eventually, purchase, TestServer};

#[tokio::test]
async fn purchase_reaches_ga4_with_event_time_session_and_transaction() {
    let s = TestServer::start().await;
    let e = purchase("1042", 5);
    let occurred = chrono::DateTime::parse_from_rfc3339(e["occurred_at"].as_str().unwrap()).unwrap();
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    assert_eq!(s.settled("order:1042:order_paid").await, ["ga4-web:delivered:sent"]);

    let got = s.ga4.events_named("purchase");
    assert_eq!(got.len(), 1);
    let p = &got[0];
    assert_eq!(p.measurement_id.as_deref(), Some("G-TEST123"));
    assert_eq!(p.client_id.as_deref(), Some("555.1042"));
    assert_eq!(p.timestamp_micros, Some(occurred.timestamp_micros()), "event time, not processing time");
    assert_eq!(p.params["transaction_id"], "1042");
    assert_eq!(p.params["currency"], "EUR");
    assert_eq!(p.params["value"], 59.9);
    assert_eq!(p.params["items"][0]["item_id"], "SKU-1");
    assert!(
        p.params["engagement_time_msec"].as_i64().unwrap_or(0) > 0
            || p.params["engagement_time_msec"].as_str().is_some()
    );
    assert_eq!(p.consent.as_ref().unwrap()["ad_personalization"], "DENIED");
    let emails = &p.user_data.as_ref().unwrap()["sha256_email_address"];
    assert_eq!(emails[0].as_str().unwrap().len(), 64);

    // The attempt is in the ledger with its request.
    let v = s.event("order:1042:order_paid").await;
    let a = &v["attempts"][0];
    assert_eq!(a["outcome"], "delivered");
    assert_eq!(a["http_status"], 204);
    assert_eq!(a["payload_sha256"].as_str().unwrap().len(), 64);
}

/// A refund ingested before (or with) its purchase is sent after it: per subject and destination,
/// deliveries leave in event-time order.
#[tokio::test]
async fn a_refund_never_overtakes_its_purchase() {
    let s = TestServer::start().await;
    let mut refund = purchase("77", 1);
    refund["kind"] = json!("refund_completed");
    refund["value"] = json!(20.0);
    let r = s.post("/v1/events", &json!({"events": [refund, purchase("77", 2)]})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.settled("order:77:refund_completed").await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.settled("order:77:order_paid").await, ["ga4-web:delivered:sent"]);
    let names: Vec<String> = s.ga4.received_events().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["purchase", "refund"], "the purchase first, though the refund was ingested first");
}

#[tokio::test]
async fn event_older_than_72_hours_is_never_sent() {
    let s = TestServer::start().await;
    assert_eq!(s.post("/v1/events", &purchase("old", 73)).await.status(), 202);
    assert_eq!(s.post("/v1/events", &purchase("fresh", 71)).await.status(), 202);
    assert_eq!(s.settled("order:old:order_paid").await, ["ga4-web:skipped:outside_window"]);
    assert_eq!(s.settled("order:fresh:order_paid").await, ["ga4-web:delivered:sent"]);
    let got = s.ga4.received_events();
    assert_eq!(got.len(), 1, "only the fresh one was sent");
    assert_eq!(got[0].params["transaction_id"], "fresh");
}

#[tokio::test]
async fn plan_reasons_consent_identity_and_browser_overlap() {
    let s = TestServer::start().await;
    let mut denied = purchase("c1", 1);
    denied["consent"]["analytics"] = json!("denied");
    let mut anonymous = purchase("c2", 1);
    anonymous["identity"] = json!({"email": "x@example.com"});
    let mut browser = purchase("c3", 1);
    browser["kind"] = json!("checkout_seen");
    let mut no_ad_data = purchase("c4", 1);
    no_ad_data["consent"]["ad_user_data"] = json!("denied");
    for e in [&denied, &anonymous, &browser, &no_ad_data] {
        assert_eq!(s.post("/v1/events", e).await.status(), 202);
    }
    assert_eq!(s.settled("order:c1:order_paid").await, ["ga4-web:skipped:consent_denied"]);
    assert_eq!(s.settled("order:c2:order_paid").await, ["ga4-web:skipped:no_identity"]);
    assert_eq!(s.settled("order:c3:checkout_seen").await, ["ga4-web:skipped:browser_tracked"]);
    assert_eq!(s.settled("order:c4:order_paid").await, ["ga4-web:delivered:sent"]);
    let got = s.ga4.received_events();
    assert_eq!(got.len(), 1);
    assert!(got[0].user_data.is_none(), "personal fields stripped without ad_user_data consent");
    let v = s.event("order:c4:order_paid").await;
    assert_eq!(v["deliveries"][0]["stripped_fields"], json!(["email"]), "the delivery records what was stripped");
    assert_eq!(got[0].consent.as_ref().unwrap()["ad_user_data"], "DENIED");
}

#[tokio::test]
async fn invalid_for_ga4_is_rejected_with_messages() {
    let s = TestServer::start_with("[catalog.weird_thing]\nga4-web = { event = \"session_start\" }\n").await;
    let mut e = purchase("r1", 1);
    e["kind"] = json!("weird_thing");
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    assert_eq!(s.settled("order:r1:weird_thing").await, ["ga4-web:rejected:invalid"]);
    let v = s.event("order:r1:weird_thing").await;
    let messages = v["deliveries"][0]["messages"].to_string();
    assert!(messages.contains("reserved"), "{messages}");
    assert!(s.ga4.received_events().is_empty());
}

#[tokio::test]
async fn outage_is_retried_with_backoff_and_delivered_once() {
    let s = TestServer::start().await;
    s.ga4.fail_next(2, Fault::Status(503));
    assert_eq!(s.post("/v1/events", &purchase("r2", 1)).await.status(), 202);
    assert_eq!(s.settled("order:r2:order_paid").await, ["ga4-web:delivered:sent"]);
    let v = s.event("order:r2:order_paid").await;
    let outcomes: Vec<&str> =
        v["attempts"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["retry", "retry", "delivered"]);
    assert_eq!(v["attempts"][0]["http_status"], 503);
    let hashes: Vec<&str> =
        v["attempts"].as_array().unwrap().iter().map(|a| a["payload_sha256"].as_str().unwrap()).collect();
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "every send carries the same payload (G2)");
    assert_eq!(s.ga4.received_events().len(), 1, "one success");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let s = TestServer::start().await;
    s.ga4.fail_next(1, Fault::TooManyRequests { retry_after_secs: 2 });
    assert_eq!(s.post("/v1/events", &purchase("r3", 1)).await.status(), 202);
    let id = "order:r3:order_paid";
    eventually("the 429 is recorded", || async {
        s.event(id).await["attempts"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let v = s.event(id).await;
    let attempted = chrono::DateTime::parse_from_rfc3339(v["attempts"][0]["at"].as_str().unwrap()).unwrap();
    let next = chrono::DateTime::parse_from_rfc3339(v["deliveries"][0]["next_attempt_at"].as_str().unwrap()).unwrap();
    assert!(
        next - attempted >= chrono::Duration::milliseconds(1900),
        "next attempt {next} only {} after",
        next - attempted
    );
    assert_eq!(s.settled(id).await, ["ga4-web:delivered:sent"]);
}

#[tokio::test]
async fn exhausted_retries_go_dead_and_replay_delivers_them() {
    let s = TestServer::start().await;
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("d1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:d1:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);
    let v = s.event("order:d1:order_paid").await;
    assert_eq!(v["attempts"].as_array().unwrap().len(), 4, "max_attempts = 4");
    assert!(v["deliveries"][0]["messages"][0].as_str().unwrap().contains("500"));

    s.ga4.set_fault(None);
    // A dry run says what would be replayed and changes nothing.
    let r = s
        .post_admin("/v1/deliveries/replay", &json!({"state": "dead", "destination": "ga4-web", "dry_run": true}))
        .await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!((report["dry_run"].as_bool(), report["replayed"].as_array().unwrap().len()), (Some(true), 1));
    assert_eq!(s.delivery_states("order:d1:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);
    let r = s.post_admin("/v1/deliveries/replay", &json!({"state": "dead", "destination": "ga4-web"})).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["replayed"].as_array().unwrap().len(), 1);
    assert_eq!(s.settled("order:d1:order_paid").await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.ga4.received_events().len(), 1);
}

#[tokio::test]
async fn replaying_a_delivered_delivery_is_refused_unless_forced_and_forced_is_logged() {
    let s = TestServer::start().await;
    let e = purchase("x1", 1);
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    let id = "order:x1:order_paid";
    assert_eq!(s.settled(id).await, ["ga4-web:delivered:sent"]);

    let r: Value = s.post_admin("/v1/deliveries/replay", &json!({"event_id": id})).await.json().await.unwrap();
    assert!(r["replayed"].as_array().unwrap().is_empty());
    assert_eq!(r["refused"][0]["state"], "delivered");
    // A redelivered webhook does not send again either.
    assert_eq!(s.post("/v1/events", &e).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.ga4.received_events().len(), 1, "no second success");

    let r: Value =
        s.post_admin("/v1/deliveries/replay", &json!({"event_id": id, "force": true})).await.json().await.unwrap();
    assert_eq!(r["replayed"].as_array().unwrap().len(), 1);
    assert_eq!(s.settled(id).await, ["ga4-web:delivered:sent"]);
    let v = s.event(id).await;
    assert_eq!(v["replays"][0]["forced"], true);
    assert_eq!(v["replays"][0]["previous_state"], "delivered");
    assert_eq!(v["replays"][0]["by"], "admin token #1", "who replayed: the API's admin token");
    let forced: Vec<bool> = v["attempts"].as_array().unwrap().iter().map(|a| a["forced"].as_bool().unwrap()).collect();
    assert_eq!(forced, [false, true], "the forced send is marked as such");
    assert_eq!(s.ga4.received_events().len(), 2);
    // The resend carries the same transaction id, so GA4 keeps one purchase.
    let ids: Vec<Value> = s.ga4.received_events().iter().map(|e| e.params["transaction_id"].clone()).collect();
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn counts_add_up_across_a_mixed_run() {
    let s = TestServer::start().await;
    s.ga4.fail_next(3, Fault::Status(502));
    let mut events = Vec::new();
    for i in 0..30 {
        let mut e = purchase(&format!("m{i}"), if i % 10 == 0 { 80 } else { 2 });
        match i % 6 {
            1 => e["consent"]["analytics"] = json!("denied"),
            2 => e["kind"] = json!("refund_completed"),
            3 => e["kind"] = json!("fulfillment_failed"),
            4 => e["identity"] = json!({}),
            _ => {}
        }
        events.push(e);
    }
    let r = s.post("/v1/events", &json!({"events": events})).await;
    assert_eq!(r.status(), 200);
    eventually("every delivery settled", || async {
        let c = s.counts().await;
        !c.deliveries.iter().any(|(_, st, _, _)| !st.is_ended())
    })
    .await;
    let c = s.counts().await;
    assert_eq!(c.events, 30);
    assert_eq!(c.events, c.routed + c.not_routed, "events = routed + not_routed");
    assert_eq!(c.not_routed, 5);
    let planned: u64 = c.deliveries.iter().map(|(_, _, _, n)| n).sum();
    assert_eq!(planned, c.routed, "one delivery per routed event (one destination)");
    let by = |state: DeliveryState| {
        c.deliveries.iter().filter(|(_, s, _, _)| *s == state).map(|(_, _, _, n)| n).sum::<u64>()
    };
    let ended = by(DeliveryState::Delivered)
        + by(DeliveryState::Rejected)
        + by(DeliveryState::Skipped)
        + by(DeliveryState::Dead)
        + by(DeliveryState::InDoubt)
        + by(DeliveryState::Pending);
    assert_eq!(planned, ended, "planned = delivered + rejected + skipped + dead + in_doubt + pending");
    assert_eq!(
        by(DeliveryState::Delivered) as usize,
        s.ga4.received_events().len(),
        "every delivered one reached GA4 once"
    );
}

#[tokio::test]
async fn debug_endpoint_validation_marks_deliveries_accepted() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_custom(dir, ga4, "validate_with_debug_endpoint = true", "").await;
    assert_eq!(s.post("/v1/events", &purchase("v1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:v1:order_paid").await, ["ga4-web:delivered:accepted"]);
    assert_eq!(s.ga4.debug_request_count(), 1);
    let v = s.event("order:v1:order_paid").await;
    let endpoints: Vec<&str> =
        v["attempts"].as_array().unwrap().iter().filter_map(|a| a["endpoint"].as_str()).collect();
    assert_eq!(endpoints, ["collect"], "the attempt is the production send");
    assert_eq!(s.ga4.received_events().len(), 1);
}

#[tokio::test]
async fn a_sick_destination_does_not_hold_up_a_healthy_one() {
    let sick = surety::platforms::ga4::sim::start().await.unwrap();
    // Slower than the client's timeout: every request to it hangs, then fails.
    sick.set_fault(Some(Fault::Delay(Duration::from_secs(5))));
    let extra = format!(
        r#"
[[destinations]]
name = "ga4-sick"
type = "ga4"
measurement_id = "G-SICK1"
api_secret = "env:{}"
base_url = "{}"
timeout_ms = 1000
concurrency = 2

[catalog.deal_won]
ga4-web = {{ event = "close_convert_lead" }}
ga4-sick = {{ event = "close_convert_lead" }}
"#,
        crate::support::GA4_SECRET_ENV,
        sick.base_url
    );
    let s = TestServer::start_with(&extra).await;
    let events: Vec<Value> = (0..60)
        .map(|i| {
            let mut e = purchase(&format!("deal{i}"), 1);
            e["kind"] = json!("deal_won");
            e["subject"] = json!({"type": "lead", "id": format!("L{i}")});
            e
        })
        .collect();
    assert_eq!(s.post("/v1/events", &json!({"events": events})).await.status(), 200);

    eventually("every healthy delivery is delivered", || async {
        let c = s.counts().await;
        c.deliveries.iter().any(|(d, st, _, n)| d == "ga4-web" && *st == DeliveryState::Delivered && *n == 60)
    })
    .await;
    assert_eq!(s.ga4.received_events().len(), 60);
    let c = s.counts().await;
    let sick_delivered: u64 = c
        .deliveries
        .iter()
        .filter(|(d, st, _, _)| d == "ga4-sick" && *st == DeliveryState::Delivered)
        .map(|(_, _, _, n)| n)
        .sum();
    assert_eq!(sick_delivered, 0, "the sick one delivered nothing meanwhile");
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"surety_queue_depth{destination="ga4-sick"}"#), "{metrics}");
    sick.set_fault(None);
}

#[tokio::test]
async fn a_platform_that_stays_down_opens_the_circuit_and_spares_attempts() {
    let s = TestServer::start().await;
    s.ga4.set_fault(Some(Fault::Status(503)));
    let events: Vec<Value> = (0..20).map(|i| purchase(&format!("cb{i}"), 1)).collect();
    assert_eq!(s.post("/v1/events", &json!({"events": events})).await.status(), 200);
    eventually("the circuit opens", || async {
        let m = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
        m.contains(r#"surety_circuit_open{destination="ga4-web"} 1"#)
    })
    .await;
    s.ga4.set_fault(None);
    eventually("all delivered after recovery", || async {
        let c = s.counts().await;
        c.deliveries.iter().any(|(_, st, _, n)| *st == DeliveryState::Delivered && *n == 20)
    })
    .await;
    assert_eq!(s.ga4.received_events().len(), 20);
}
