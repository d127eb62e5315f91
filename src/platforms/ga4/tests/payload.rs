//! The shape of what is sent.

use serde_json::{json, Value};

use super::*;
use crate::core::pii::sha256_hex;
use crate::platforms::ga4::{payload, transaction_id, Ga4Event};

#[test]
fn event_time_is_occurred_at_in_micros_on_event_and_request() {
    let mut e = purchase("1042");
    e.occurred_at = at("2026-11-20T10:15:00.123456Z");
    let body = single(&e, "purchase", false);
    let micros = at("2026-11-20T10:15:00.123456Z").timestamp_micros();
    assert_eq!(micros, 1_795_169_700_123_456);
    assert_eq!(body["timestamp_micros"], json!(micros));
    assert_eq!(body["events"][0]["timestamp_micros"], json!(micros));
}

#[test]
fn request_time_is_the_earliest_of_a_batch() {
    let mut a = purchase("1");
    a.occurred_at = at("2026-11-20T10:00:00Z");
    let mut b = purchase("2");
    b.occurred_at = at("2026-11-20T09:00:00Z");
    let (pa, pb) = (Ga4Event::new(&a, &route("purchase"), false), Ga4Event::new(&b, &route("purchase"), false));
    let body = body_json(&[&pa, &pb]);
    assert_eq!(body["timestamp_micros"], json!(b.occurred_at.timestamp_micros()));
    assert_eq!(body["events"][0]["timestamp_micros"], json!(a.occurred_at.timestamp_micros()));
    assert_eq!(body["events"][1]["timestamp_micros"], json!(b.occurred_at.timestamp_micros()));
}

#[test]
fn session_is_stitched_when_known() {
    let body = single(&purchase("1042"), "purchase", false);
    let params = &body["events"][0]["params"];
    assert_eq!(params["session_id"], json!("1700000000"));
    assert_eq!(params["engagement_time_msec"], json!(1));

    let mut e = purchase("1042");
    e.identity.session_id = None;
    let body = single(&e, "purchase", false);
    let params = body["events"][0]["params"].as_object().unwrap();
    assert!(!params.contains_key("session_id"));
    assert!(!params.contains_key("engagement_time_msec"));
}

#[test]
fn purchase_fields() {
    let body = single(&purchase("1042"), "purchase", false);
    assert_eq!(body["client_id"], json!("1234567890.1700000000"));
    assert_eq!(body["user_id"], json!("u-77"));
    let event = &body["events"][0];
    assert_eq!(event["name"], json!("purchase"));
    let params = &event["params"];
    assert_eq!(params["transaction_id"], json!("1042"));
    assert_eq!(params["value"], json!(59.9));
    assert_eq!(params["currency"], json!("EUR"));
    assert_eq!(
        params["items"],
        json!([{"item_id": "SKU-1", "item_name": "Linen shirt", "price": 59.9, "quantity": 1}])
    );
    assert!(params.get("event_id").is_none(), "GA4 has no event id parameter");
}

#[test]
fn transaction_id_sources() {
    let mut e = purchase("1042");
    e.attributes.insert("transaction_id".into(), json!("T-9"));
    assert_eq!(transaction_id(&e).as_deref(), Some("T-9"));
    e.attributes.insert("transaction_id".into(), json!(981));
    assert_eq!(transaction_id(&e).as_deref(), Some("981"));
    e.attributes.insert("transaction_id".into(), json!("  "));
    assert_eq!(transaction_id(&e).as_deref(), Some("1042"), "an empty id falls back to the order");
    let lead = event("lead_qualified", "lead", "L-1");
    assert_eq!(transaction_id(&lead), None);

    // A refund carries the original order's id.
    let mut refund = purchase("1042");
    refund.kind = Kind::parse("refund_completed").unwrap();
    let body = single(&refund, "refund", false);
    assert_eq!(body["events"][0]["params"]["transaction_id"], json!("1042"));
}

#[test]
fn other_events_carry_value_but_no_transaction_id() {
    let mut e = event("lead_qualified", "lead", "L-1");
    e.value = Some(120.0);
    e.currency = Some(Currency::parse("usd").unwrap());
    let body = single(&e, "qualify_lead", false);
    let params = body["events"][0]["params"].as_object().unwrap();
    assert_eq!(params["value"], json!(120.0));
    assert_eq!(params["currency"], json!("USD"));
    assert!(!params.contains_key("transaction_id"));
    assert!(!params.contains_key("items"));

    let mut order = purchase("7");
    order.value = None;
    order.currency = None;
    let body = single(&order, "begin_checkout", false);
    assert!(body["events"][0]["params"].get("transaction_id").is_none());
    assert!(body["events"][0]["params"].get("value").is_none());
}

#[test]
fn scalar_attributes_become_params_and_builtins_win() {
    let mut e = purchase("1042");
    e.attributes.insert("payment_type".into(), json!("bank_transfer"));
    e.attributes.insert("installments".into(), json!(3));
    e.attributes.insert("gift".into(), json!(true));
    e.attributes.insert("nested".into(), json!({"a": 1}));
    e.attributes.insert("list".into(), json!([1, 2]));
    e.attributes.insert("nothing".into(), Value::Null);
    e.attributes.insert("currency".into(), json!("USD"));
    e.attributes.insert("session_id".into(), json!("forged"));
    let body = single(&e, "purchase", false);
    let params = body["events"][0]["params"].as_object().unwrap();
    assert_eq!(params["payment_type"], json!("bank_transfer"));
    assert_eq!(params["installments"], json!(3));
    assert_eq!(params["gift"], json!(true));
    assert!(!params.contains_key("nested") && !params.contains_key("list") && !params.contains_key("nothing"));
    assert_eq!(params["currency"], json!("EUR"));
    assert_eq!(params["session_id"], json!("1700000000"));
}

#[test]
fn consent_mapping() {
    let body = single(&purchase("1"), "purchase", false);
    assert_eq!(body["consent"], json!({"ad_user_data": "GRANTED", "ad_personalization": "DENIED"}));

    let mut e = purchase("1");
    e.consent = Consent { analytics: Some(ConsentState::Granted), ad_user_data: None, ad_personalization: None };
    assert!(single(&e, "purchase", false).get("consent").is_none(), "unknown consent is not invented");

    e.consent.ad_user_data = Some(ConsentState::Denied);
    assert_eq!(single(&e, "purchase", true)["consent"], json!({"ad_user_data": "DENIED"}));
}

#[test]
fn user_data_uses_google_hashes_and_is_stripped_entirely() {
    let e = purchase("1");
    let body = single(&e, "purchase", false);
    let ud = &body["user_data"];
    let email = e.identity.email.as_ref().unwrap();
    assert_ne!(email.google, email.meta, "gmail dots make the schemes differ");
    assert_eq!(ud["sha256_email_address"], json!([email.google.as_str()]));
    assert_eq!(ud["sha256_phone_number"], json!([e.identity.phone.as_ref().unwrap().google.as_str()]));
    let address = &ud["address"][0];
    assert_eq!(address["sha256_first_name"], json!(e.identity.first_name.as_ref().unwrap().google.as_str()));
    assert_eq!(address["sha256_last_name"], json!(e.identity.last_name.as_ref().unwrap().google.as_str()));
    assert_eq!(address["sha256_street"], json!(e.identity.street.as_ref().unwrap().google.as_str()));
    assert_eq!(address["city"], json!("berlin"));
    assert_eq!(address["country"], json!("DE"));
    assert!(address.get("region").is_none());

    let stripped = single(&e, "purchase", true);
    assert!(stripped.get("user_data").is_none());
    assert_eq!(stripped["client_id"], body["client_id"], "only personal data goes");
    assert_eq!(stripped["events"], body["events"]);

    let bare = event("order_paid", "order", "2");
    assert!(single(&bare, "purchase", false).get("user_data").is_none());
}

/// GA4's `user_data` has no gender or date of birth: those are Meta's alone, and the body is
/// byte for byte the one built without them.
#[test]
fn gender_and_date_of_birth_never_reach_ga4() {
    use crate::core::pii::{hash_date_of_birth, hash_gender};
    let without = purchase("1");
    let mut e = without.clone();
    e.identity.gender = Some(hash_gender("f").unwrap());
    e.identity.date_of_birth = Some(hash_date_of_birth("1990-01-31", Utc::now().date_naive()).unwrap());
    for strip in [false, true] {
        let body = single(&e, "purchase", strip);
        assert_eq!(body, single(&without, "purchase", strip));
        let text = body.to_string();
        for h in [e.identity.gender.as_ref().unwrap(), e.identity.date_of_birth.as_ref().unwrap()] {
            assert!(!text.contains(h.google.as_str()) && !text.contains(h.meta.as_str()), "{text}");
        }
    }
}

#[test]
fn payload_hash_is_the_event_object_and_stable() {
    let e = purchase("1042");
    let a = Ga4Event::new(&e, &route("purchase"), false);
    let b = Ga4Event::new(&e.clone(), &route("purchase"), false);
    assert_eq!(a.event_sha256, b.event_sha256);
    assert_eq!(a.event_sha256, sha256_hex(a.event_json.as_bytes()));
    let body = String::from_utf8(payload::request_body(&[&a], false)).unwrap();
    assert!(body.contains(&a.event_json), "the hashed bytes are the bytes sent");
    // Stripping personal data changes the request, not the event's part.
    let stripped = Ga4Event::new(&e, &route("purchase"), true);
    assert_eq!(stripped.event_sha256, a.event_sha256);
    assert_ne!(stripped.header_json, a.header_json);
}

#[test]
fn enforce_adds_validation_behavior_only() {
    let p = Ga4Event::new(&purchase("1"), &route("purchase"), false);
    let strict: Value = serde_json::from_slice(&payload::request_body(&[&p], true)).unwrap();
    let mut relaxed = body_json(&[&p]);
    assert_eq!(strict["validation_behavior"], json!("ENFORCE_RECOMMENDATIONS"));
    relaxed["validation_behavior"] = json!("ENFORCE_RECOMMENDATIONS");
    assert_eq!(strict, relaxed);
}

#[test]
fn empty_header_still_makes_valid_json() {
    let mut e = event("lead_created", "lead", "1");
    e.identity.client_id = None;
    let body = single(&e, "generate_lead", false);
    assert!(body.get("client_id").is_none());
    assert_eq!(body["events"][0]["name"], json!("generate_lead"));
}

#[test]
fn ip_user_agent_and_location_only_with_analytics_consent() {
    let mut e = purchase("1042");
    e.identity.ip = Some("203.0.113.7".into());
    e.identity.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64)".into());
    e.identity.region = Some("be".into());
    let body = single(&e, "purchase", false);
    assert_eq!(body["ip_override"], json!("203.0.113.7"));
    assert_eq!(body["user_agent"], json!("Mozilla/5.0 (X11; Linux x86_64)"));
    assert_eq!(body["user_location"], json!({"city": "berlin", "region_id": "DE-BE", "country_id": "DE"}));

    for analytics in [None, Some(ConsentState::Denied)] {
        e.consent.analytics = analytics;
        let body = single(&e, "purchase", false);
        let request = body.as_object().unwrap();
        for key in ["ip_override", "user_agent", "user_location"] {
            assert!(!request.contains_key(key), "{key} sent without analytics consent ({analytics:?})");
        }
    }
}

#[test]
fn events_with_different_visitors_do_not_share_a_request() {
    let mut a = purchase("1");
    a.identity.ip = Some("203.0.113.7".into());
    let mut b = purchase("2");
    b.identity.ip = Some("198.51.100.9".into());
    let parts = [Ga4Event::new(&a, &route("purchase"), false), Ga4Event::new(&b, &route("purchase"), false)];
    assert_eq!(crate::platforms::ga4::batch::split(&parts, 25), vec![vec![0], vec![1]]);
    b.identity.ip = a.identity.ip.clone();
    let parts = [Ga4Event::new(&a, &route("purchase"), false), Ga4Event::new(&b, &route("purchase"), false)];
    assert_eq!(crate::platforms::ga4::batch::split(&parts, 25), vec![vec![0, 1]]);
}

#[test]
fn region_id_needs_an_iso_form() {
    let mut e = purchase("1");
    e.identity.region = Some("US-CA".into());
    assert_eq!(single(&e, "purchase", false)["user_location"]["region_id"], json!("US-CA"));
    e.identity.region = Some("Bavaria".into());
    assert!(single(&e, "purchase", false)["user_location"].get("region_id").is_none());
}

#[test]
fn session_age_is_the_time_since_the_session_started() {
    let mut e = purchase("1");
    e.identity.session_id = Some("1700000000".into());
    let sent_at = chrono::DateTime::from_timestamp(1_700_000_000 + 600, 0).unwrap();
    assert_eq!(crate::platforms::ga4::session_age_secs(&e, sent_at), Some(600));
    e.identity.session_id = Some("not-a-start-time".into());
    assert_eq!(crate::platforms::ga4::session_age_secs(&e, sent_at), None);
    e.identity.session_id = None;
    assert_eq!(crate::platforms::ga4::session_age_secs(&e, sent_at), None);
}
