//! Tests of the GA4 simulator: its validation, its answers, its faults.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z").unwrap().with_timezone(&Utc)
}

fn creds() -> Vec<(String, String)> {
    vec![("measurement_id".into(), "G-X1".into()), ("api_secret".into(), "s".into())]
}

const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn valid() -> Value {
    let ts = now().timestamp_micros() - 3_600_000_000;
    json!({
        "client_id": "123.456",
        "user_id": "u-1",
        "timestamp_micros": ts,
        "consent": {"ad_user_data": "GRANTED", "ad_personalization": "DENIED"},
        "user_data": {"sha256_email_address": [HEX], "sha256_phone_number": [HEX],
                      "address": [{"sha256_first_name": HEX, "city": "berlin", "country": "DE"}]},
        "events": [{"name": "purchase", "timestamp_micros": ts, "params": {
            "transaction_id": "T1", "value": 9.5, "currency": "EUR", "session_id": "17", "engagement_time_msec": 1,
            "items": [{"item_id": "SKU", "item_name": "Shirt", "price": 9.5, "quantity": 1}]}}]
    })
}

fn check(body: &Value) -> Vec<Message> {
    validate(&creds(), body.to_string().as_bytes(), now())
}

#[track_caller]
fn flags(body: &Value, path: &str, code: Code) {
    let m = check(body);
    assert!(
        m.iter().any(|m| m.field_path == path && m.validation_code == code),
        "expected {code:?} at {path}, got {m:#?}"
    );
}

#[test]
fn a_valid_request_has_no_messages() {
    assert_eq!(check(&valid()), vec![]);
}

#[test]
fn credentials_and_body() {
    let body = valid().to_string();
    let m = validate(&[], body.as_bytes(), now());
    assert!(m.iter().any(|m| m.field_path == "api_secret" && m.validation_code == Code::ValueRequired));
    assert!(m.iter().any(|m| m.field_path == "measurement_id" && m.validation_code == Code::ValueRequired));
    let m = validate(&creds(), b"not json", now());
    assert_eq!(m[0].validation_code, Code::ValueInvalid);
}

#[test]
fn request_level_rules() {
    let mut b = valid();
    b.as_object_mut().unwrap().remove("client_id");
    flags(&b, "client_id", Code::ValueRequired);
    let mut b = valid();
    b["user_id"] = json!("u".repeat(257));
    flags(&b, "user_id", Code::ValueOutOfBounds);
    let mut b = valid();
    b["consent"]["ad_user_data"] = json!("yes");
    flags(&b, "consent.ad_user_data", Code::ValueInvalid);
    let mut b = valid();
    b["user_data"]["sha256_email_address"] = json!(["jane@example.com"]);
    flags(&b, "user_data.sha256_email_address[0]", Code::ValueInvalid);
    let mut b = valid();
    b["user_data"]["sha256_phone_number"] = json!([HEX, HEX, HEX, HEX]);
    flags(&b, "user_data.sha256_phone_number", Code::ExceededMaxEntities);
    let mut b = valid();
    b["events"] = json!([]);
    flags(&b, "events", Code::ValueRequired);
    let mut b = valid();
    let one = b["events"][0].clone();
    b["events"] = Value::Array(vec![one; 26]);
    flags(&b, "events", Code::ExceededMaxEntities);
}

#[test]
fn timestamps_outside_72_hours_or_in_the_future() {
    let mut b = valid();
    b["events"][0]["timestamp_micros"] = json!(now().timestamp_micros() - 73 * 3_600_000_000);
    flags(&b, "events[0].timestamp_micros", Code::ValueInvalid);
    let mut b = valid();
    b["timestamp_micros"] = json!(now().timestamp_millis()); // a unit mistake
    flags(&b, "timestamp_micros", Code::ValueInvalid);
    let mut b = valid();
    b["timestamp_micros"] = json!(now().timestamp_micros() * 1000);
    flags(&b, "timestamp_micros", Code::ValueInvalid);
}

#[test]
fn event_name_rules() {
    for (name, code) in [
        ("session_start", Code::NameReserved),
        ("screen_view", Code::NameReserved),
        ("google_thing", Code::NameReserved),
        ("_thing", Code::NameReserved),
        ("add-to-cart", Code::NameInvalid),
        ("9lives", Code::NameInvalid),
        ("", Code::NameInvalid),
    ] {
        let mut b = valid();
        b["events"][0]["name"] = json!(name);
        flags(&b, "events[0].name", code);
    }
    let mut b = valid();
    b["events"][0]["name"] = json!("a".repeat(41));
    flags(&b, "events[0].name", Code::NameInvalid);
    let mut b = valid();
    b["events"][0].as_object_mut().unwrap().remove("name");
    flags(&b, "events[0].name", Code::ValueRequired);
}

#[test]
fn param_rules() {
    let mut b = valid();
    for i in 0..20 {
        b["events"][0]["params"][format!("p{i}")] = json!(i);
    }
    flags(&b, "events[0].params", Code::ExceededMaxEntities);
    for (name, code) in [
        ("firebase_conversion", Code::NameReserved),
        ("gtag.x", Code::NameReserved),
        ("ga_x", Code::NameReserved),
        ("bad-name", Code::NameInvalid),
    ] {
        let mut b = valid();
        b["events"][0]["params"][name] = json!("v");
        flags(&b, &format!("events[0].params.{name}"), code);
    }
    let mut b = valid();
    b["events"][0]["params"]["note"] = json!("x".repeat(101));
    flags(&b, "events[0].params.note", Code::ValueOutOfBounds);
    let mut b = valid();
    b["events"][0]["params"]["note"] = json!({"nested": true});
    flags(&b, "events[0].params.note", Code::ValueInvalid);
    let mut b = valid();
    b["events"][0]["params"]["engagement_time_msec"] = json!(0);
    flags(&b, "events[0].params.engagement_time_msec", Code::ValueInvalid);
}

#[test]
fn ecommerce_rules() {
    let mut b = valid();
    b["events"][0]["params"].as_object_mut().unwrap().remove("transaction_id");
    flags(&b, "events[0].params.transaction_id", Code::ValueRequired);
    let mut b = valid();
    b["events"][0]["name"] = json!("refund");
    b["events"][0]["params"]["transaction_id"] = json!(" ");
    flags(&b, "events[0].params.transaction_id", Code::ValueRequired);
    let mut b = valid();
    b["events"][0]["params"].as_object_mut().unwrap().remove("currency");
    flags(&b, "events[0].params.currency", Code::ValueRequired);
    let mut b = valid();
    b["events"][0]["params"]["currency"] = json!("eur");
    flags(&b, "events[0].params.currency", Code::ValueInvalid);
    let mut b = valid();
    b["events"][0]["params"]["items"] = json!([{"price": 1}]);
    flags(&b, "events[0].params.items[0]", Code::ValueRequired);
    let mut b = valid();
    let mut item = json!({"item_id": "SKU"});
    for i in 0..11 {
        item[format!("c{i}")] = json!(i);
    }
    b["events"][0]["params"]["items"] = json!([item]);
    flags(&b, "events[0].params.items[0]", Code::ExceededMaxEntities);
}

async fn post(sim: &Ga4Sim, path: &str, query: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    reqwest::Client::new().post(format!("{}{path}?{query}", sim.base_url)).body(body).send().await.unwrap()
}

const Q: &str = "measurement_id=G-X1&api_secret=s";

#[tokio::test]
async fn collect_answers_204_to_anything_and_reports_what_it_can() {
    let sim = start().await.unwrap();
    let r = post(&sim, "/mp/collect", Q, "garbage").await;
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = post(&sim, "/mp/collect", "", valid().to_string()).await;
    assert_eq!(r.status(), 204, "even without credentials");
    let r = post(&sim, "/mp/collect", Q, valid().to_string()).await;
    assert_eq!(r.status(), 204);

    assert_eq!(sim.request_count(), 3);
    assert_eq!(sim.requests().len(), 3);
    assert_eq!(sim.event_count(), 1, "only the request with credentials and JSON is reported");
    let events = sim.received_events();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.name.as_str(), e.client_id.as_deref(), e.user_id.as_deref()),
        ("purchase", Some("123.456"), Some("u-1"))
    );
    assert_eq!(e.measurement_id.as_deref(), Some("G-X1"));
    assert_eq!(e.params["transaction_id"], json!("T1"));
    assert_eq!(e.consent.as_ref().unwrap()["ad_personalization"], json!("DENIED"));
    assert!(e.user_data.is_some());
    assert_eq!(sim.events_named("purchase").len(), 1);
    assert!(sim.events_named("refund").is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn debug_answers_validation_messages() {
    let sim = start().await.unwrap();
    let mut body = valid();
    let ts = Utc::now().timestamp_micros();
    body["timestamp_micros"] = json!(ts);
    body["events"][0]["timestamp_micros"] = json!(ts);
    let r = post(&sim, "/debug/mp/collect", Q, body.to_string()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"validationMessages": []}));

    body["events"][0]["name"] = json!("session_start");
    let r = post(&sim, "/debug/mp/collect", Q, body.to_string()).await;
    let answer: Value = r.json().await.unwrap();
    let m = &answer["validationMessages"][0];
    assert_eq!(m["fieldPath"], json!("events[0].name"));
    assert_eq!(m["validationCode"], json!("NAME_RESERVED"));
    assert!(m["description"].as_str().is_some_and(|d| !d.is_empty()));
    assert_eq!(sim.debug_request_count(), 2);
    assert!(sim.received_events().is_empty(), "debug events are not reported");
    sim.shutdown().await;
}

#[tokio::test]
async fn bodies_of_130kb_are_refused() {
    let sim = start().await.unwrap();
    let r = post(&sim, "/mp/collect", Q, vec![b' '; 130_000]).await;
    assert_eq!(r.status(), 413);
    let r = post(&sim, "/debug/mp/collect", Q, vec![b' '; 130_000]).await;
    assert_eq!(r.status(), 413);
    let r = post(&sim, "/mp/collect", Q, vec![b' '; 129_999]).await;
    assert_eq!(r.status(), 204);
    assert_eq!(sim.request_count(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_then_recovery() {
    let sim = start().await.unwrap();
    let handle = sim.clone();
    handle.fail_next(2, Fault::Status(503));
    assert_eq!(post(&sim, "/mp/collect", Q, "{}").await.status(), 503);
    assert_eq!(post(&sim, "/debug/mp/collect", Q, "{}").await.status(), 503);
    assert_eq!(post(&sim, "/mp/collect", Q, "{}").await.status(), 204);

    handle.set_fault(Some(Fault::TooManyRequests { retry_after_secs: 30 }));
    let r = post(&sim, "/mp/collect", Q, "{}").await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "30");
    handle.set_fault(None);
    assert_eq!(post(&sim, "/mp/collect", Q, "{}").await.status(), 204);
    assert_eq!(sim.fault_count(), 3);
    assert_eq!(sim.request_count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_delayed_answer_was_processed_first() {
    let sim = start().await.unwrap();
    sim.fail_next(1, Fault::Delay(Duration::from_secs(5)));
    let client = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let url = format!("{}/mp/collect?{Q}", sim.base_url);
    assert!(client.post(&url).body(valid().to_string()).send().await.unwrap_err().is_timeout());
    assert_eq!(sim.event_count(), 1, "the platform took it; only its answer was lost");
    sim.shutdown().await;
}

#[tokio::test]
async fn counting_without_recording() {
    let sim = start().await.unwrap();
    sim.set_recording(false);
    for _ in 0..3 {
        post(&sim, "/mp/collect", Q, valid().to_string()).await;
    }
    assert_eq!((sim.request_count(), sim.event_count()), (3, 3));
    assert!(sim.requests().is_empty());
    sim.set_recording(true);
    sim.clear();
    assert_eq!(sim.request_count(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_router_can_be_mounted() {
    let state = Ga4SimState::new();
    let app = Router::new().nest("/ga", router(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/ga/mp/collect?{Q}"))
        .body(valid().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(state.event_count(), 1);
    server.abort();
}

/// As Google warns: the validation server checks the payload, never whether the `api_secret` is
/// right (it only needs one), so `surety destinations test` cannot claim to have checked it.
#[tokio::test]
async fn debug_takes_any_api_secret_and_reports_nothing() {
    let sim = start().await.unwrap();
    let mut body = valid();
    let ts = Utc::now().timestamp_micros();
    body["timestamp_micros"] = json!(ts);
    body["events"][0]["timestamp_micros"] = json!(ts);
    let r = post(&sim, "/debug/mp/collect", "measurement_id=G-X1&api_secret=not-the-real-one", body.to_string()).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"validationMessages": []}));
    let r = post(&sim, "/debug/mp/collect", "measurement_id=G-X1", body.to_string()).await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["validationMessages"][0]["fieldPath"], json!("api_secret"), "{answer}");
    assert_eq!(sim.event_count(), 0);
    sim.shutdown().await;
}
