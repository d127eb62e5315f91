//! Tests of the LinkedIn simulator: its gates, its validation, its answers, its faults.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use super::*;

const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z").unwrap().with_timezone(&Utc)
}

fn element_at(at: DateTime<Utc>, event_id: &str) -> Value {
    json!({
        "conversion": "urn:lla:llaPartnerConversion:104012",
        "conversionHappenedAt": (at - Duration::hours(1)).timestamp_millis(),
        "conversionValue": {"currencyCode": "USD", "amount": "1500.0"},
        "eventId": event_id,
        "user": {
            "userIds": [
                {"idType": "SHA256_EMAIL", "idValue": HEX},
                {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": "df5gf5-gh6t7"}
            ],
            "userInfo": {"firstName": "mike", "lastName": "smith", "countryCode": "US"}
        }
    })
}

fn element() -> Value {
    element_at(now(), "abc12345")
}

fn paths(violations: &[Violation]) -> Vec<String> {
    violations.iter().map(|v| v.path.clone()).collect()
}

#[test]
fn a_valid_element_passes_both_layers() {
    assert_eq!(schema(&element()), vec![]);
    assert_eq!(values(&element(), now()), vec![]);
    let mut minimal = element();
    minimal.as_object_mut().unwrap().remove("conversionValue");
    minimal.as_object_mut().unwrap().remove("eventId");
    minimal["user"].as_object_mut().unwrap().remove("userInfo");
    assert_eq!(schema(&minimal), vec![]);
    assert_eq!(values(&minimal, now()), vec![]);
}

#[test]
fn schema_violations_are_types_and_fields() {
    let mut e = element();
    e["conversionValue"]["amount"] = json!(1500.0);
    e["conversionHappenedAt"] = json!("1795169700000");
    e["eventID"] = json!("typo");
    e["user"]["userIds"][1]["idType"] = json!("EMAIL");
    e["user"]["userInfo"].as_object_mut().unwrap().remove("lastName");
    e["conversionValue"].as_object_mut().unwrap().remove("currencyCode");
    let mut p = paths(&schema(&e));
    p.sort_unstable();
    assert_eq!(
        p,
        [
            "/conversionHappenedAt",
            "/conversionValue/amount",
            "/conversionValue/currencyCode",
            "/eventID",
            "/user/userIds/1/idType",
            "/user/userInfo/lastName"
        ]
    );
    let mut e = element();
    e.as_object_mut().unwrap().remove("user");
    assert_eq!(paths(&schema(&e)), ["/user"]);
    e["user"] = json!({"userInfo": {"firstName": "a", "lastName": "b"}});
    assert_eq!(paths(&schema(&e)), ["/user/userIds"], "userIds is required even when userInfo is given");
    assert_eq!(paths(&schema(&json!(5))), [""]);
}

#[test]
fn value_violations() {
    let check = |f: &dyn Fn(&mut Value)| {
        let mut e = element();
        f(&mut e);
        assert_eq!(schema(&e), vec![], "a value case must pass the schema");
        paths(&values(&e, now()))
    };
    assert_eq!(check(&|e| e["conversion"] = json!("104012")), ["/conversion"]);
    assert_eq!(check(&|e| e["conversion"] = json!("urn:lla:llaPartnerConversion:")), ["/conversion"]);
    let old = (now() - Duration::days(90) - Duration::minutes(1)).timestamp_millis();
    assert_eq!(check(&|e| e["conversionHappenedAt"] = json!(old)), ["/conversionHappenedAt"]);
    let seconds = now().timestamp(); // a unit mistake lands in 1970
    assert_eq!(check(&|e| e["conversionHappenedAt"] = json!(seconds)), ["/conversionHappenedAt"]);
    let future = (now() + Duration::hours(2)).timestamp_millis();
    assert_eq!(check(&|e| e["conversionHappenedAt"] = json!(future)), ["/conversionHappenedAt"]);
    let inside = (now() - Duration::days(89)).timestamp_millis();
    assert!(check(&|e| e["conversionHappenedAt"] = json!(inside)).is_empty());
    for bad in ["abc", "-5.00", "1e3", "59,90", "", ".5"] {
        assert_eq!(check(&|e| e["conversionValue"]["amount"] = json!(bad)), ["/conversionValue/amount"], "{bad}");
    }
    for good in ["59.9", "59.90", "100", "0.0001"] {
        assert!(check(&|e| e["conversionValue"]["amount"] = json!(good)).is_empty(), "{good}");
    }
    assert_eq!(check(&|e| e["conversionValue"]["currencyCode"] = json!("usd")), ["/conversionValue/currencyCode"]);
    assert_eq!(check(&|e| e["eventId"] = json!(" ")), ["/eventId"]);
    assert_eq!(check(&|e| e["user"]["userIds"][0]["idValue"] = json!("jane@example.com")), ["/user/userIds/0/idValue"]);
    assert_eq!(check(&|e| e["user"]["userIds"][1]["idValue"] = json!("")), ["/user/userIds/1/idValue"]);
    let ip = |v: &str| json!([{"idType": "PLAINTEXT_IP_ADDRESS", "idValue": v}]);
    assert_eq!(check(&|e| e["user"]["userIds"] = ip("300.1.1.1")), ["/user/userIds/0/idValue"]);
    assert!(check(&|e| e["user"]["userIds"] = ip("203.0.113.7")).is_empty());
    assert_eq!(
        check(&|e| {
            e["user"]["userIds"] = json!([]);
            e["user"].as_object_mut().unwrap().remove("userInfo");
        }),
        ["/user"]
    );
    assert!(check(&|e| e["user"]["userIds"] = json!([])).is_empty(), "userInfo with names suffices");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(StdDuration::from_millis(500)).build().unwrap()
}

/// A request with LinkedIn's headers, each of which `omit` may leave out; status 0 when no
/// answer came within the client's timeout.
async fn post(sim: &LinkedinSim, body: &Value, batch: bool, omit: &[&str]) -> (u16, Value) {
    let mut r = client().post(format!("{}/rest/conversionEvents", sim.base_url)).json(body);
    for (name, value) in [
        ("authorization", "Bearer t0ken"),
        ("linkedin-version", "202511"),
        ("x-restli-protocol-version", "2.0.0"),
        ("x-restli-method", "BATCH_CREATE"),
    ] {
        let wanted = !omit.contains(&name) && (batch || name != "x-restli-method");
        if wanted {
            r = r.header(name, value);
        }
    }
    let Ok(response) = r.send().await else {
        return (0, Value::Null);
    };
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn batch_of(elements: Vec<Value>) -> Value {
    json!({ "elements": elements })
}

#[tokio::test]
async fn the_gates_answer_linkedins_errors() {
    let sim = start().await.unwrap();
    let body = batch_of(vec![element_at(Utc::now(), "e1")]);
    let (status, answer) = post(&sim, &body, true, &["authorization"]).await;
    assert_eq!(status, 401);
    assert_eq!(answer["status"], json!(401));
    assert!(answer["serviceErrorCode"].is_i64() && answer["message"].is_string(), "{answer}");

    sim.set_access_token(Some("another"));
    assert_eq!(post(&sim, &body, true, &[]).await.0, 401);
    sim.set_access_token(Some("t0ken"));
    assert_eq!(post(&sim, &body, true, &[]).await.0, 200);
    sim.set_token_expired(true);
    let (status, answer) = post(&sim, &body, true, &[]).await;
    assert_eq!(status, 401);
    assert!(answer["message"].as_str().unwrap().contains("expired"));
    sim.set_token_expired(false);

    let (status, answer) = post(&sim, &body, true, &["linkedin-version"]).await;
    assert_eq!(status, 400);
    assert!(answer["message"].as_str().unwrap().contains("LinkedIn-Version"));
    sim.retire_versions_before("202601");
    let (status, answer) = post(&sim, &body, true, &[]).await;
    assert_eq!(status, 426);
    assert_eq!(answer["message"], json!("Requested version 202511 is not active"));
    sim.retire_versions_before(DEFAULT_OLDEST_VERSION);

    assert_eq!(post(&sim, &body, true, &["x-restli-protocol-version"]).await.0, 400);
    assert_eq!(sim.conversion_count(), 1);
    // Refused before processing: only requests past the gates count.
    assert_eq!(sim.request_count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_batch_answers_per_element() {
    let sim = start().await.unwrap();
    let mut old = element_at(Utc::now(), "e2");
    old["conversionHappenedAt"] = json!((Utc::now() - Duration::days(91)).timestamp_millis());
    let body = batch_of(vec![element_at(Utc::now(), "e1"), old, element_at(Utc::now(), "e3")]);
    let (status, answer) = post(&sim, &body, true, &[]).await;
    assert_eq!(status, 200);
    let statuses: Vec<u64> =
        answer["elements"].as_array().unwrap().iter().map(|e| e["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [201, 422, 201]);
    assert!(answer["elements"][1]["error"]["message"].as_str().unwrap().contains("/conversionHappenedAt"));
    let kept: Vec<Option<String>> = sim.received_conversions().into_iter().map(|c| c.event_id).collect();
    assert_eq!(kept, [Some("e1".into()), Some("e3".into())]);
    assert_eq!(sim.requests()[0].element_statuses, [201, 422, 201]);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_schema_violation_refuses_the_whole_batch_listing_every_one() {
    let sim = start().await.unwrap();
    let mut bad = element_at(Utc::now(), "e2");
    bad["conversionValue"]["amount"] = json!(59.9);
    bad["user"].as_object_mut().unwrap().remove("userIds");
    let body = batch_of(vec![element_at(Utc::now(), "e1"), bad, json!("x")]);
    let (status, answer) = post(&sim, &body, true, &[]).await;
    assert_eq!(status, 422);
    let message = answer["message"].as_str().unwrap();
    for path in ["/elements/1/conversionValue/amount", "/elements/1/user/userIds", "/elements/2 "] {
        assert!(message.contains(path), "{path} missing in {message}");
    }
    assert_eq!(sim.conversion_count(), 0, "nothing of a refused request is kept");
    sim.shutdown().await;
}

#[tokio::test]
async fn single_creates_answer_201_with_an_empty_body() {
    let sim = start().await.unwrap();
    let response = client()
        .post(format!("{}/rest/conversionEvents", sim.base_url))
        .header("authorization", "Bearer t")
        .header("linkedin-version", "202511")
        .header("x-restli-protocol-version", "2.0.0")
        .json(&element_at(Utc::now(), "e1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    assert!(response.bytes().await.unwrap().is_empty());
    let mut bad = element_at(Utc::now(), "e2");
    bad["conversion"] = json!("104012");
    let (status, answer) = post(&sim, &bad, false, &[]).await;
    assert_eq!(status, 422);
    assert!(answer["message"].as_str().unwrap().contains("/conversion"));
    assert_eq!(sim.requests()[0].method, None);
    assert_eq!(sim.conversion_count(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn limits_throttling_and_faults() {
    let sim = start().await.unwrap();
    let one = batch_of(vec![element_at(Utc::now(), "e1")]);
    assert_eq!(post(&sim, &batch_of(vec![]), true, &[]).await.0, 400);
    assert_eq!(post(&sim, &json!({"nope": 1}), true, &[]).await.0, 400);
    sim.set_max_batch(2);
    let three = batch_of(vec![element_at(Utc::now(), "a"), element_at(Utc::now(), "b"), element_at(Utc::now(), "c")]);
    assert_eq!(post(&sim, &three, true, &[]).await.0, 400);

    sim.set_request_quota(Some(1));
    assert_eq!(post(&sim, &one, true, &[]).await.0, 200);
    let (status, answer) = post(&sim, &one, true, &[]).await;
    assert_eq!((status, answer["status"].clone()), (429, json!(429)));
    assert_eq!(sim.throttled_count(), 1);
    sim.set_request_quota(None);

    sim.fail_next(1, Fault::Status(503));
    assert_eq!(post(&sim, &one, true, &[]).await.0, 503);
    sim.fail_next(1, Fault::TooManyRequests { retry_after_secs: 3 });
    let response = client().post(format!("{}/rest/conversionEvents", sim.base_url)).json(&one).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    assert_eq!(sim.fault_count(), 2);

    sim.fail_next_elements(1, 500);
    let (_, answer) =
        post(&sim, &batch_of(vec![element_at(Utc::now(), "x"), element_at(Utc::now(), "y")]), true, &[]).await;
    assert_eq!(answer["elements"][0]["status"], json!(500));
    assert_eq!(answer["elements"][1]["status"], json!(201));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_delayed_answer_was_processed_first_and_duplicates_count_once() {
    let sim = start().await.unwrap();
    let one = batch_of(vec![element_at(Utc::now(), "e1")]);
    sim.fail_next(1, Fault::Delay(StdDuration::from_secs(1)));
    let (status, _) = post(&sim, &one, true, &[]).await;
    assert_eq!(status, 0, "the answer comes after the client's timeout");
    assert_eq!(sim.received_conversions().len(), 1, "kept although the answer was lost");
    assert_eq!(post(&sim, &one, true, &[]).await.0, 200);
    let mut other = element_at(Utc::now(), "e1");
    other["conversion"] = json!("urn:lla:llaPartnerConversion:7");
    let mut no_id = element_at(Utc::now(), "");
    no_id.as_object_mut().unwrap().remove("eventId");
    post(&sim, &batch_of(vec![other, no_id.clone(), no_id]), true, &[]).await;
    assert_eq!(sim.received_conversions().len(), 5);
    // e1 twice on rule 104012 counts once; e1 on another rule and elements without eventId count.
    assert_eq!(sim.unique_conversions().len(), 4);
    sim.set_recording(false);
    post(&sim, &one, true, &[]).await;
    assert_eq!(sim.received_conversions().len(), 5);
    assert_eq!(sim.conversion_count(), 6);
    sim.clear();
    assert_eq!((sim.conversion_count(), sim.requests().len()), (0, 0));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_router_can_be_mounted() {
    let state = LinkedinSimState::new();
    let app = Router::new().nest("/linkedin", router(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let response = client()
        .post(format!("http://{addr}/linkedin/rest/conversionEvents"))
        .header("authorization", "Bearer t")
        .header("linkedin-version", "202511")
        .header("x-restli-protocol-version", "2.0.0")
        .header("x-restli-method", "BATCH_CREATE")
        .json(&batch_of(vec![element_at(Utc::now(), "e1")]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(state.conversion_count(), 1);
    server.abort();
}

async fn get_rule(sim: &LinkedinSim, id: &str, token: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}/rest/conversions/{id}", sim.base_url))
        .header("authorization", format!("Bearer {token}"))
        .header("linkedin-version", "202511")
        .header("x-restli-protocol-version", "2.0.0")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_conversion_rule_lookup_answers_as_linkedin_and_counts_nothing() {
    let sim = start().await.unwrap();
    let (status, rule) = get_rule(&sim, "104012", "t0ken").await;
    assert_eq!(status, 200);
    assert_eq!((rule["id"].clone(), rule["enabled"].clone()), (json!(104012), json!(true)));
    sim.set_conversion_rules(&[("1", RuleAccess::Enabled), ("2", RuleAccess::Disabled), ("3", RuleAccess::Forbidden)]);
    assert_eq!(get_rule(&sim, "2", "t0ken").await.1["enabled"], json!(false));
    assert_eq!(get_rule(&sim, "3", "t0ken").await.0, 403);
    let (status, answer) = get_rule(&sim, "104012", "t0ken").await;
    assert_eq!(status, 404);
    assert_eq!(answer["status"], json!(404));
    sim.set_access_token(Some("another"));
    assert_eq!(get_rule(&sim, "1", "t0ken").await.0, 401);
    assert_eq!(sim.conversion_count(), 0);
    sim.shutdown().await;
}
