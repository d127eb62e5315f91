//! Tests of the Google Ads simulator: its validation, its token endpoint, its answers, faults
//! and adjustment semantics — driven with hand-made requests, not the adapter.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::*;
use crate::sim::Fault;

const HEX: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn destination(id: &str) -> Value {
    json!({"reference": id, "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
           "productDestinationId": id})
}

fn event(tx: &str) -> Value {
    json!({"destinationReferences": ["111"], "transactionId": tx, "eventTimestamp": "2026-11-20T10:15:00Z",
           "eventSource": "OTHER", "conversionValue": 10.5, "currency": "EUR",
           "adIdentifiers": {"gclid": "Cj0-abc"},
           "userData": {"userIdentifiers": [{"emailAddress": HEX},
               {"address": {"givenName": HEX, "familyName": HEX, "regionCode": "DE", "postalCode": "10115"}}]},
           "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"}})
}

fn request(events: Vec<Value>) -> Value {
    json!({"destinations": [destination("111")], "encoding": "HEX", "events": events})
}

fn check(body: &Value) -> Vec<Violation> {
    validate(body.as_object().unwrap())
}

#[track_caller]
fn flags(body: &Value, field: &str, reason: &str) {
    let v = check(body);
    assert!(v.iter().any(|v| v.field == field && v.reason == reason), "expected {reason} at {field}, got {v:#?}");
}

#[test]
fn a_valid_request_has_no_violations() {
    assert_eq!(check(&request(vec![event("1"), event("2")])), vec![]);
}

#[test]
fn request_level_rules() {
    flags(&request(vec![]), "events", "REQUIRED_FIELD_MISSING");
    flags(&request(vec![event("1"); MAX_EVENTS + 1]), "events", "TOO_MANY_EVENTS");
    let mut b = request(vec![event("1")]);
    b["destinations"] = Value::Array((0..11).map(|i| destination(&format!("{}", 100 + i))).collect());
    flags(&b, "destinations", "TOO_MANY_DESTINATIONS");
    let mut b = request(vec![event("1")]);
    b["destinations"] = json!([destination("111"), destination("111")]);
    flags(&b, "destinations[1].reference", "DUPLICATE_DESTINATION_REFERENCE");
    let mut b = request(vec![event("1")]);
    b["destinations"][0]["productDestinationId"] = json!("purchase");
    flags(&b, "destinations[0].productDestinationId", "INVALID_CONVERSION_ACTION_ID");
    let mut b = request(vec![event("1")]);
    b.as_object_mut().unwrap().remove("encoding");
    flags(&b, "encoding", "REQUIRED_FIELD_MISSING");
}

#[test]
fn fast_fail_names_every_invalid_record() {
    let mut bad1 = event("2");
    bad1["adIdentifiers"] = json!({"gbraid": "g", "wbraid": "w"});
    let mut bad3 = event("4");
    bad3["eventTimestamp"] = json!("1700000000");
    bad3["userData"]["userIdentifiers"][0]["emailAddress"] = json!("jane@example.com");
    let body = request(vec![event("1"), bad1, event("3"), bad3]);
    let v = check(&body);
    let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(
        fields,
        vec![
            "events[1].adIdentifiers",
            "events[3].eventTimestamp",
            "events[3].userData.userIdentifiers[0].emailAddress"
        ]
    );
    assert_eq!(v[2].reason, "INVALID_HEX_ENCODING");
}

#[test]
fn event_rules() {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut e = event("1");
        f(&mut e);
        request(vec![e])
    };
    flags(&with(&|e| e["currency"] = json!("eur")), "events[0].currency", "INVALID_CURRENCY_CODE");
    flags(
        &with(&|e| drop(e.as_object_mut().unwrap().remove("currency"))),
        "events[0].currency",
        "REQUIRED_FIELD_MISSING",
    );
    flags(
        &with(&|e| e["userData"]["userIdentifiers"][0]["emailAddress"] = json!(&HEX[..60])),
        "events[0].userData.userIdentifiers[0].emailAddress",
        "INVALID_SHA256_FORMAT",
    );
    flags(
        &with(&|e| e["userData"]["userIdentifiers"][1]["address"]["regionCode"] = json!("DEU")),
        "events[0].userData.userIdentifiers[1].address.regionCode",
        "INVALID_COUNTRY_CODE",
    );
    flags(
        &with(&|e| e["userData"]["userIdentifiers"] = Value::Array(vec![json!({"emailAddress": HEX}); 11])),
        "events[0].userData.userIdentifiers",
        "TOO_MANY_USER_IDENTIFIERS",
    );
    flags(
        &with(&|e| e["destinationReferences"] = json!(["999"])),
        "events[0].destinationReferences[0]",
        "INVALID_DESTINATION",
    );
    flags(&with(&|e| e["eventSource"] = json!("BROWSER")), "events[0].eventSource", "INVALID_ENUM_VALUE");
    flags(
        &with(&|e| e["consent"]["adUserData"] = json!("GRANTED")),
        "events[0].consent.adUserData",
        "INVALID_ENUM_VALUE",
    );
    flags(
        &with(&|e| {
            let o = e.as_object_mut().unwrap();
            o.remove("adIdentifiers");
            o.remove("userData");
        }),
        "events[0]",
        "NO_IDENTIFIERS_PROVIDED",
    );
}

/// An assertion signed with the committed test key.
fn assertion(claims: Value) -> String {
    let key: Value = serde_json::from_str(TEST_SERVICE_ACCOUNT_JSON).unwrap();
    let pem = key["private_key"].as_str().unwrap();
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
}

fn claims(aud: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({"iss": TEST_CLIENT_EMAIL, "scope": SCOPE, "aud": aud, "iat": now, "exp": now + 3600})
}

fn form(assertion: &str) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", GRANT_TYPE)
        .append_pair("assertion", assertion)
        .finish()
        .into_bytes()
}

#[test]
fn the_grant_checks_signature_issuer_audience_scope_and_lifetime() {
    let state = GoogleAdsSimState::with_test_key();
    let key = &state.inner.key;
    let aud = "http://sim/token";
    let grant = |c: Value| check_grant(&form(&assertion(c)), key, TEST_CLIENT_EMAIL, Some(aud));
    assert_eq!(grant(claims(aud)), Ok(()));
    assert_eq!(check_grant(&form(&assertion(claims(aud))), key, TEST_CLIENT_EMAIL, None), Ok(()));

    // Another signature byte: one character of the signature changed, well before its end.
    let good = assertion(claims(aud));
    let at = good.rfind('.').unwrap() + 10;
    let swapped = if &good[at..=at] == "A" { "B" } else { "A" };
    let tampered = format!("{}{swapped}{}", &good[..at], &good[at + 1..]);
    let e = check_grant(&form(&tampered), key, TEST_CLIENT_EMAIL, Some(aud)).unwrap_err();
    assert_eq!((e.error, e.description.as_str()), ("invalid_grant", "Invalid JWT Signature."));

    let mut c = claims(aud);
    c["iss"] = json!("someone@else.iam.gserviceaccount.com");
    assert_eq!(grant(c).unwrap_err().error, "invalid_grant");
    assert!(grant(claims("http://elsewhere/token")).unwrap_err().description.contains("audience"));
    let mut c = claims(aud);
    c["scope"] = json!("https://www.googleapis.com/auth/adwords");
    assert_eq!(grant(c).unwrap_err().error, "invalid_scope");
    let mut c = claims(aud);
    c["exp"] = json!(Utc::now().timestamp() - 600);
    c["iat"] = json!(Utc::now().timestamp() - 1200);
    assert!(grant(c).unwrap_err().description.contains("short-lived"));
    let mut c = claims(aud);
    c["exp"] = json!(Utc::now().timestamp() + 7200);
    assert!(grant(c).unwrap_err().description.contains("short-lived"));

    let wrong_type = b"grant_type=client_credentials&assertion=x";
    assert_eq!(check_grant(wrong_type, key, TEST_CLIENT_EMAIL, Some(aud)).unwrap_err().error, "unsupported_grant_type");
}

async fn token(sim: &GoogleAdsSim, client: &reqwest::Client) -> String {
    let r = client.post(&sim.token_url).body(form(&assertion(claims(&sim.token_url)))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn ingest_needs_an_issued_token_and_answers_a_request_id_then_its_status() {
    let sim = start().await.unwrap();
    let client = reqwest::Client::new();
    let ingest = format!("{}/v1/events:ingest", sim.base_url);
    let r = client.post(&ingest).json(&request(vec![event("1")])).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    let bearer = format!("Bearer {}", token(&sim, &client).await);
    let r =
        client.post(&ingest).header("authorization", &bearer).json(&request(vec![event("1")])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["requestId"].as_str().unwrap().to_owned();
    assert_eq!(sim.received_events().len(), 1);
    assert_eq!(sim.received_events()[0].request_id, id);

    let status = |id: String| {
        let client = client.clone();
        let url = format!("{}/v1/requestStatus:retrieve", sim.base_url);
        let bearer = bearer.clone();
        async move {
            let r = client.get(url).query(&[("requestId", id)]).header("authorization", bearer).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (code, body) = status(id.clone()).await;
    assert_eq!(code, 200);
    assert_eq!(body["requestStatusPerDestination"][0]["requestStatus"], "PROCESSING");
    assert_eq!(body["requestStatusPerDestination"][0]["destination"]["productDestinationId"], "111");
    let (_, body) = status(id).await;
    assert_eq!(body["requestStatusPerDestination"][0]["requestStatus"], "SUCCESS");
    assert_eq!(body["requestStatusPerDestination"][0]["eventsIngestionStatus"]["recordCount"], "1");
    let (code, body) = status("unknown".into()).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["details"][0]["reason"], "INVALID_REQUEST_ID");

    // An invalid request is refused whole, with google.rpc.BadRequest.
    let mut bad = event("2");
    bad["currency"] = json!("euro");
    let r = client
        .post(&ingest)
        .header("authorization", &bearer)
        .json(&request(vec![event("3"), bad]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], "INVALID_ARGUMENT");
    let violations = &body["error"]["details"][1]["fieldViolations"];
    assert_eq!(violations[0]["field"], "events[1].currency");
    assert_eq!(sim.received_events().len(), 1, "nothing of a refused request is kept");

    sim.revoke_tokens();
    let r =
        client.post(&ingest).header("authorization", &bearer).json(&request(vec![event("1")])).send().await.unwrap();
    assert_eq!(r.status(), 401);
    sim.shutdown().await;
}

#[tokio::test]
async fn repeats_are_adjustments_and_quotas_and_faults_answer_as_google_does() {
    let sim = start().await.unwrap();
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {}", token(&sim, &client).await);
    let ingest = format!("{}/v1/events:ingest", sim.base_url);
    let send = |body: Value| client.post(&ingest).header("authorization", &bearer).json(&body).send();

    assert_eq!(send(request(vec![event("T1")])).await.unwrap().status(), 200);
    let mut restated = event("T1");
    restated["conversionValue"] = json!(4.0);
    restated.as_object_mut().unwrap().remove("userData");
    assert_eq!(send(request(vec![restated])).await.unwrap().status(), 200);
    let c = sim.conversion("111", "T1").unwrap();
    assert_eq!((c.value, c.adjustments, c.has_user_data), (Some(4.0), 1, true));
    assert_eq!(c.event_timestamp.as_deref(), Some("2026-11-20T10:15:00Z"));
    assert_eq!(sim.conversions().len(), 1);

    sim.set_quota_per_minute(Some(1));
    assert_eq!(send(request(vec![event("T2")])).await.unwrap().status(), 200);
    let r = send(request(vec![event("T3")])).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_none(), "quota errors name no wait");
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["status"], "RESOURCE_EXHAUSTED");
    sim.set_quota_per_minute(None);

    sim.fail_next(1, Fault::TooManyRequests { retry_after_secs: 9 });
    let r = send(request(vec![event("T4")])).await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["retry-after"].to_str().unwrap()), (429, "9"));
    sim.fail_next(1, Fault::Status(503));
    let r = send(request(vec![event("T4")])).await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["status"], "UNAVAILABLE");
    assert_eq!(sim.fault_count(), 2);
    assert!(sim.conversion("111", "T4").is_none());

    sim.refuse_tokens(Some("invalid_grant"));
    let r = client.post(&sim.token_url).body(form(&assertion(claims(&sim.token_url)))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_second_identical_restatement_is_a_duplicate_transaction_id() {
    let sim = start().await.unwrap();
    sim.set_processing_polls(0);
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {}", token(&sim, &client).await);
    let ingest = format!("{}/v1/events:ingest", sim.base_url);
    let send = |body: Value| client.post(&ingest).header("authorization", &bearer).json(&body).send();
    let status = |id: String| {
        let url = format!("{}/v1/requestStatus:retrieve", sim.base_url);
        let r = client.get(url).query(&[("requestId", id)]).header("authorization", &bearer).send();
        async move { r.await.unwrap().json::<Value>().await.unwrap()["requestStatusPerDestination"][0].clone() }
    };
    let id = |r: reqwest::Response| async move {
        r.json::<Value>().await.unwrap()["requestId"].as_str().unwrap().to_owned()
    };

    let original = event("T1");
    assert_eq!(send(request(vec![original.clone()])).await.unwrap().status(), 200);
    // A byte-identical resend (an in-doubt resend) is the same event.
    let again = id(send(request(vec![original])).await.unwrap()).await;
    assert_eq!(status(again).await["requestStatus"], "SUCCESS");
    let restate = |value: f64, at: &str| {
        let mut e = event("T1");
        e["conversionValue"] = json!(value);
        e["lastUpdatedTimestamp"] = json!(at);
        e
    };
    let first = id(send(request(vec![restate(0.0, "2026-11-21T10:00:00Z")])).await.unwrap()).await;
    assert_eq!(status(first).await["requestStatus"], "SUCCESS");
    // Another event restating the value the conversion already has is refused in processing.
    let second = id(send(request(vec![restate(0.0, "2026-11-22T10:00:00Z")])).await.unwrap()).await;
    let s = status(second).await;
    assert_eq!(s["requestStatus"], "FAILED", "{s}");
    assert_eq!(s["errorInfo"]["errorCounts"][0]["reason"], "PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID");
    let c = sim.conversion("111", "T1").unwrap();
    assert_eq!((c.value, c.adjustments, c.duplicates), (Some(0.0), 1, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn validate_only_checks_everything_and_keeps_nothing() {
    let sim = start().await.unwrap();
    let client = reqwest::Client::new();
    let ingest = format!("{}/v1/events:ingest", sim.base_url);
    let bearer = format!("Bearer {}", token(&sim, &client).await);
    let post = |body: Value| {
        let (client, ingest, bearer) = (client.clone(), ingest.clone(), bearer.clone());
        async move {
            let r = client.post(ingest).header("authorization", bearer).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let mut valid = request(vec![event("1")]);
    valid["validateOnly"] = json!(true);
    let (code, body) = post(valid.clone()).await;
    assert_eq!((code, body), (200, json!({})), "no requestId: nothing to ask about later");
    assert_eq!((sim.event_count(), sim.received_events().len()), (0, 0));

    let mut bad = event("2");
    bad["currency"] = json!("euro");
    let mut invalid = request(vec![bad]);
    invalid["validateOnly"] = json!(true);
    let (code, body) = post(invalid).await;
    assert_eq!(code, 400);
    assert_eq!(body["error"]["details"][1]["fieldViolations"][0]["field"], "events[0].currency");

    // An operating account the service account cannot reach is refused, validate-only or not.
    sim.only_accounts(&["9999999999"]);
    let (code, body) = post(valid).await;
    assert_eq!(code, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert!(body["error"]["message"].as_str().unwrap().contains("1234567890"));
    assert_eq!(sim.event_count(), 0);
    sim.shutdown().await;
}
