//! Tests of the Meta simulator: its checks, its answers, its faults, its dedupe view.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;

const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z").unwrap().with_timezone(&Utc)
}

fn valid_at(t: i64) -> Value {
    json!({
        "event_name": "Purchase", "event_time": t - 3600, "event_id": "order:1:order_paid",
        "action_source": "system_generated",
        "user_data": {"em": [HEX], "ph": HEX, "external_id": ["u-1"], "fbp": "fb.1.1.1",
                      "client_ip_address": "203.0.113.7", "client_user_agent": "Mozilla/5.0"},
        "custom_data": {"value": 9.5, "currency": "EUR", "contents": [{"id": "SKU", "quantity": 1}]}
    })
}

fn valid() -> Value {
    valid_at(now().timestamp())
}

#[track_caller]
fn flags(event: &Value, field: &str) {
    let p = check_event(0, event, now());
    assert!(p.iter().any(|p| p.field == field), "expected a problem at {field}, got {p:#?}");
}

fn with(path: &[&str], v: Value) -> Value {
    let mut e = valid();
    let mut at = &mut e;
    for k in &path[..path.len() - 1] {
        at = &mut at[*k];
    }
    at[path[path.len() - 1]] = v;
    e
}

fn without(key: &str) -> Value {
    let mut e = valid();
    e.as_object_mut().unwrap().remove(key);
    e
}

#[test]
fn a_valid_event_has_no_problems() {
    assert_eq!(check_event(0, &valid(), now()), vec![]);
}

#[test]
fn required_fields_and_time() {
    flags(&without("event_name"), "data[0].event_name");
    flags(&without("event_time"), "data[0].event_time");
    flags(&without("action_source"), "data[0].action_source");
    flags(&without("user_data"), "data[0].user_data");
    flags(&with(&["user_data"], json!({})), "data[0].user_data");
    let t = now().timestamp();
    flags(&with(&["event_time"], json!(t - WINDOW_SECS - 1)), "data[0].event_time");
    flags(&with(&["event_time"], json!(t + FUTURE_SLACK_SECS + 1)), "data[0].event_time");
    flags(&with(&["event_time"], json!((t - 60) * 1000)), "data[0].event_time");
    assert_eq!(check_event(0, &with(&["event_time"], json!(t - WINDOW_SECS + 60)), now()), vec![]);
    flags(&with(&["event_id"], json!(7)), "data[0].event_id");
    let p = check_event(3, &without("event_name"), now());
    assert_eq!(p[0].field, "data[3].event_name");
}

#[test]
fn action_sources() {
    flags(&with(&["action_source"], json!("web")), "data[0].action_source");
    let web = with(&["action_source"], json!("website"));
    flags(&web, "data[0].event_source_url");
    let mut web = with(&["event_source_url"], json!("https://shop.example/"));
    web["action_source"] = json!("website");
    assert_eq!(check_event(0, &web, now()), vec![]);
    web["user_data"].as_object_mut().unwrap().remove("client_user_agent");
    flags(&web, "data[0].user_data.client_user_agent");
    flags(&with(&["action_source"], json!("app")), "data[0].app_data");
}

#[test]
fn hashing_rules() {
    flags(&with(&["user_data", "em"], json!(["jane@example.com"])), "data[0].user_data.em");
    flags(&with(&["user_data", "ct"], json!("berlin")), "data[0].user_data.ct");
    flags(&with(&["user_data", "country"], json!(["de"])), "data[0].user_data.country");
    flags(&with(&["user_data", "zp"], json!([])), "data[0].user_data.zp");
    flags(&with(&["user_data", "fn"], json!([HEX.to_uppercase()])), "data[0].user_data.fn");
    flags(&with(&["user_data", "fbp"], json!(HEX)), "data[0].user_data.fbp");
    flags(&with(&["user_data", "client_user_agent"], json!(HEX)), "data[0].user_data.client_user_agent");
    flags(&with(&["user_data", "client_ip_address"], json!("300.1.1.1")), "data[0].user_data.client_ip_address");
    flags(&with(&["user_data", "external_id"], json!([1])), "data[0].user_data.external_id");
    // external_id: hashing recommended, not required.
    assert_eq!(check_event(0, &with(&["user_data", "external_id"], json!("plain-id")), now()), vec![]);
}

#[test]
fn custom_data_rules() {
    flags(&without("custom_data"), "data[0].custom_data");
    flags(&with(&["custom_data"], json!({"value": 1.0})), "data[0].custom_data");
    let mut lead = with(&["custom_data"], json!({"value": 1.0}));
    lead["event_name"] = json!("Lead");
    flags(&lead, "data[0].custom_data.currency");
    flags(&with(&["custom_data", "currency"], json!("EURO")), "data[0].custom_data.currency");
    flags(&with(&["custom_data", "value"], json!("9.5")), "data[0].custom_data.value");
    flags(&with(&["custom_data", "contents"], json!([{"quantity": 1}])), "data[0].custom_data.contents");
    flags(&with(&["data_processing_options"], json!(["XYZ"])), "data[0].data_processing_options");
    flags(&with(&["data_processing_options_state"], json!("1000")), "data[0].data_processing_options_state");
}

// ---- over HTTP ----

async fn post(sim: &MetaSim, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut url = format!("{}/v24.0/123/events", sim.base_url);
    if let Some(t) = token {
        url.push_str(&format!("?access_token={t}"));
    }
    let r = reqwest::Client::new().post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn body(events: Vec<Value>) -> Value {
    json!({ "data": events })
}

fn fresh() -> Value {
    valid_at(Utc::now().timestamp())
}

#[tokio::test]
async fn accepts_valid_events_and_answers_events_received() {
    let sim = start().await.unwrap();
    let (status, answer) = post(&sim, Some("tok"), &json!({"data": [fresh(), fresh()]})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["events_received"], json!(2));
    assert_eq!(answer["messages"], json!([]));
    assert!(answer["fbtrace_id"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!((sim.request_count(), sim.event_count()), (1, 2));
    let got = sim.received_events();
    assert_eq!(got[0].test_event_code, None);
    assert_eq!(got[0].pixel_id, "123");
    assert!(!got[0].duplicate && got[1].duplicate, "same event_id and event_name: Meta keeps one");
    assert_eq!(sim.unique_events().len(), 1);
    assert_eq!(sim.deduplicated_count(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn one_invalid_event_rejects_the_whole_request_naming_it() {
    let sim = start().await.unwrap();
    let mut bad = fresh();
    bad["user_data"]["em"] = json!(["jane@example.com"]);
    let (status, answer) = post(&sim, Some("tok"), &body(vec![fresh(), bad, fresh()])).await;
    assert_eq!(status, 400);
    let e = &answer["error"];
    assert_eq!(e["code"], json!(100));
    assert_eq!(e["type"], json!("OAuthException"));
    assert!(e["error_user_msg"].as_str().unwrap().starts_with("data[1].user_data.em:"), "{e}");
    assert!(sim.received_events().is_empty(), "nothing of a rejected request is kept");
    assert_eq!(sim.rejected_request_count(), 1);
    assert_eq!(sim.requests()[0].error_code, Some(100));
    sim.shutdown().await;
}

#[tokio::test]
async fn limits_and_body_shape() {
    let sim = start().await.unwrap();
    let (status, answer) = post(&sim, Some("tok"), &body(vec![fresh(); MAX_EVENTS + 1])).await;
    assert_eq!((status, answer["error"]["code"].clone()), (400, json!(100)));
    assert!(answer["error"]["error_user_msg"].as_str().unwrap().contains("at most 1000"));
    let (status, _) = post(&sim, Some("tok"), &body(vec![fresh(); MAX_EVENTS])).await;
    assert_eq!(status, 200);
    let (status, _) = post(&sim, Some("tok"), &body(vec![])).await;
    assert_eq!(status, 400);
    let (status, _) = post(&sim, Some("tok"), &json!({"events": [fresh()]})).await;
    assert_eq!(status, 400);
    let (status, _) = post(&sim, Some("tok"), &json!({"data": [fresh()], "test_event_code": 5})).await;
    assert_eq!(status, 400);
    sim.shutdown().await;
}

#[tokio::test]
async fn tokens_missing_rotated_and_expired() {
    let sim = start().await.unwrap();
    let (status, answer) = post(&sim, None, &body(vec![fresh()])).await;
    assert_eq!((status, answer["error"]["code"].clone()), (400, json!(104)));
    sim.rotate_token("new");
    let (status, answer) = post(&sim, Some("old"), &body(vec![fresh()])).await;
    assert_eq!((status, answer["error"]["code"].clone()), (401, json!(190)));
    assert_eq!(post(&sim, Some("new"), &body(vec![fresh()])).await.0, 200);
    sim.expire_token();
    let (status, answer) = post(&sim, Some("new"), &body(vec![fresh()])).await;
    assert_eq!(
        (status, answer["error"]["code"].clone(), answer["error"]["error_subcode"].clone()),
        (401, json!(190), json!(463))
    );
    sim.accept_any_token();
    assert_eq!(post(&sim, Some("anything"), &body(vec![fresh()])).await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn injected_errors_and_faults() {
    let sim = start().await.unwrap();
    sim.fail_next_with_error(2, 17, None, false);
    for _ in 0..2 {
        let (status, answer) = post(&sim, Some("t"), &body(vec![fresh()])).await;
        assert_eq!((status, answer["error"]["code"].clone()), (400, json!(17)));
    }
    sim.fail_next_with_error(1, 2, None, true);
    let (status, answer) = post(&sim, Some("t"), &body(vec![fresh()])).await;
    assert_eq!((status, answer["error"]["is_transient"].clone()), (503, json!(true)));
    sim.fail_next(1, Fault::TooManyRequests { retry_after_secs: 9 });
    let r = reqwest::Client::new()
        .post(format!("{}/v24.0/1/events?access_token=t", sim.base_url))
        .json(&body(vec![fresh()]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "9");
    assert_eq!(sim.fault_count(), 4);
    assert_eq!(sim.event_count(), 0, "faulted requests are not processed");
    assert_eq!(post(&sim, Some("t"), &body(vec![fresh()])).await.0, 200);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_delay_processes_first_and_answers_late() {
    let sim = start().await.unwrap();
    sim.fail_next(1, Fault::Delay(Duration::from_millis(300)));
    let client = reqwest::Client::builder().timeout(Duration::from_millis(100)).build().unwrap();
    let sent =
        client.post(format!("{}/v24.0/1/events?access_token=t", sim.base_url)).json(&body(vec![fresh()])).send().await;
    assert!(sent.is_err_and(|e| e.is_timeout()));
    assert_eq!(sim.event_count(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn browser_events_dedupe_server_ones_and_clear_forgets() {
    let sim = start().await.unwrap();
    sim.record_browser_event("order:1:order_paid", "Purchase");
    post(&sim, Some("t"), &body(vec![fresh()])).await;
    let mut other_name = fresh();
    other_name["event_name"] = json!("Subscribe");
    other_name.as_object_mut().unwrap().remove("custom_data");
    post(&sim, Some("t"), &body(vec![other_name])).await;
    assert_eq!(sim.deduplicated_count(), 1, "same id, same name");
    assert_eq!(sim.unique_events().len(), 1, "same id, another name: a different event");
    sim.set_recording(false);
    post(&sim, Some("t"), &body(vec![fresh()])).await;
    assert_eq!(sim.received_events().len(), 2);
    assert_eq!(sim.event_count(), 3);
    sim.clear();
    assert_eq!((sim.event_count(), sim.deduplicated_count(), sim.requests().len()), (0, 0, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn test_events_are_received_but_neither_counted_nor_deduplicated() {
    let sim = start().await.unwrap();
    let (status, answer) = post(&sim, Some("tok"), &json!({"data": [fresh(), fresh()], "test_event_code": "T1"})).await;
    assert_eq!(status, 200);
    assert_eq!(answer["events_received"], json!(2));
    assert_eq!((sim.event_count(), sim.test_event_count()), (0, 2));
    assert_eq!(sim.received_events()[0].test_event_code.as_deref(), Some("T1"));
    assert!(sim.unique_events().is_empty());
    assert_eq!(sim.deduplicated_count(), 0);
    // The same event sent for real afterwards is the first of its kind.
    let (status, _) = post(&sim, Some("tok"), &json!({"data": [fresh()]})).await;
    assert_eq!(status, 200);
    assert_eq!((sim.event_count(), sim.unique_events().len(), sim.deduplicated_count()), (1, 1, 0));
}

#[tokio::test]
async fn an_unknown_pixel_is_refused_as_meta_refuses_an_unknown_object() {
    let sim = start().await.unwrap();
    sim.only_pixels(&["999"]);
    let (status, answer) = post(&sim, Some("tok"), &json!({"data": [fresh()], "test_event_code": "T1"})).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], json!(100));
    assert_eq!(answer["error"]["error_subcode"], json!(33));
    assert!(answer["error"]["message"].as_str().unwrap().contains("Object with ID '123' does not exist"));
    assert_eq!(sim.test_event_count(), 0);
}
