//! The event object and request body: time, hashes, click ids, consent, adjustments, grouping.

use serde_json::json;

use super::*;
use crate::core::pii::hash_email;
use crate::platforms::google_ads::config::Retraction;
use crate::platforms::google_ads::payload::{request_body, Accounts};
use crate::platforms::google_ads::{check_body, rfc3339, transaction_id};

fn accounts() -> Accounts {
    Accounts { customer_id: "1234567890".into(), login_customer_id: Some("1112223333".into()) }
}

#[test]
fn an_order_becomes_a_conversion_with_google_hashes_and_consent() {
    let mut e = purchase("1042");
    e.occurred_at = at("2026-11-20T10:15:00Z");
    e.identity.gbraid = Some("braid-should-not-go".into());
    let o = object(&e, ACTION, false, &shape());
    let email = e.identity.email.as_ref().unwrap();
    assert_ne!(email.google, email.meta, "gmail dots: Google's normalisation differs from Meta's");
    assert_eq!(
        o,
        json!({
            "destinationReferences": [ACTION],
            "transactionId": "1042",
            "eventTimestamp": "2026-11-20T10:15:00Z",
            "eventSource": "OTHER",
            "conversionValue": 59.9,
            "currency": "EUR",
            "adIdentifiers": {"gclid": "Cj0KCQ-gclid-1042"},
            "userData": {"userIdentifiers": [
                {"emailAddress": email.google.as_str()},
                {"phoneNumber": e.identity.phone.as_ref().unwrap().google.as_str()},
                {"address": {
                    "givenName": e.identity.first_name.as_ref().unwrap().google.as_str(),
                    "familyName": e.identity.last_name.as_ref().unwrap().google.as_str(),
                    "regionCode": "DE",
                    "postalCode": "10115"
                }}
            ]},
            "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"}
        })
    );
    // Google's documented vector: dots removed from a gmail local part, then SHA-256 hex.
    assert_eq!(email.google, hash_email("janedoe@gmail.com").unwrap().google);
    assert_eq!(email.google.as_str().len(), 64);
}

#[test]
fn time_is_rfc3339_utc_with_subseconds_only_when_present() {
    assert_eq!(rfc3339(at("2026-11-20T10:15:00+01:00")), "2026-11-20T09:15:00Z");
    assert_eq!(rfc3339(at("2026-11-20T10:15:00.250Z")), "2026-11-20T10:15:00.250Z");
}

#[test]
fn braids_go_when_there_is_no_gclid_and_personal_data_can_be_stripped() {
    let mut e = purchase("7");
    e.identity.gclid = None;
    e.identity.wbraid = Some("wb-1".into());
    let o = object(&e, ACTION, true, &shape());
    assert_eq!(o["adIdentifiers"], json!({"wbraid": "wb-1"}));
    assert!(o.get("userData").is_none(), "stripped: no user identifiers at all");
    assert_eq!(o["consent"]["adUserData"], "CONSENT_GRANTED", "consent is still stated");
    e.identity.gbraid = Some("gb-1".into());
    let o = object(&e, ACTION, true, &shape());
    assert_eq!(o["adIdentifiers"], json!({"gbraid": "gb-1", "wbraid": "wb-1"}), "kept for validation to refuse");
}

#[test]
fn an_incomplete_address_is_left_out() {
    let mut e = purchase("8");
    e.identity.postal_code = None;
    let o = object(&e, ACTION, false, &shape());
    let ids = o["userData"]["userIdentifiers"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|i| i.get("address").is_none()));
}

#[test]
fn transaction_ids() {
    let mut e = event("order_paid", "order", "1042");
    assert_eq!(transaction_id(&e), "1042");
    e.attributes.insert("transaction_id".into(), json!("T-9"));
    assert_eq!(transaction_id(&e), "T-9");
    e.attributes.insert("transaction_id".into(), json!(99));
    assert_eq!(transaction_id(&e), "99");
    e.attributes.insert("transaction_id".into(), json!("  "));
    assert_eq!(transaction_id(&e), "1042", "an empty attribute is ignored");
    assert_eq!(transaction_id(&event("lead_qualified", "lead", "L-5")), "L-5");
    let sub = event("subscription_started", "subscription", "sub_1");
    assert_eq!(transaction_id(&sub), "subscription:sub_1:subscription_started", "else the stable event id");
}

#[test]
fn a_refund_restates_the_same_transaction() {
    let shape = shape();
    let o = object(&refund("1042", Some(49.9)), ACTION, false, &shape);
    assert_eq!(o["transactionId"], "1042");
    assert_eq!(o["conversionValue"], json!(49.9), "the restated value, not the refunded amount");
    assert_eq!(o["currency"], "EUR");
    assert_eq!(o["eventTimestamp"], o["lastUpdatedTimestamp"], "no conversion time known: the adjustment's");

    let full = object(&refund("1042", None), ACTION, false, &shape);
    assert_eq!(full["conversionValue"], json!(0.0), "retraction = zero_value");

    let mut skip = shape.clone();
    skip.adjustments.retraction = Retraction::Skip;
    assert!(object(&refund("1042", None), ACTION, false, &skip).get("conversionValue").is_none());

    let mut r = refund("1042", Some(0.0));
    r.occurred_at = at("2026-11-25T08:00:00Z");
    r.attributes.insert("conversion_occurred_at".into(), json!("2026-11-20T10:15:00+01:00"));
    let o = object(&r, ACTION, false, &shape);
    assert_eq!(o["eventTimestamp"], "2026-11-20T09:15:00Z", "the conversion keeps its own time");
    assert_eq!(o["lastUpdatedTimestamp"], "2026-11-25T08:00:00Z");
}

#[test]
fn event_source_per_kind() {
    let mut shape = shape();
    shape.event_sources.insert("order_paid".into(), crate::platforms::google_ads::config::EventSource::InStore);
    assert_eq!(object(&purchase("1"), ACTION, false, &shape)["eventSource"], "IN_STORE");
    assert_eq!(object(&event("lead_qualified", "lead", "1"), ACTION, false, &shape)["eventSource"], "OTHER");
}

#[test]
fn a_request_names_each_conversion_action_once_in_order() {
    let shape = shape();
    let parts = [
        IngestEvent::new(&purchase("1"), &route("222"), false, &shape),
        IngestEvent::new(&purchase("2"), &route("111"), false, &shape),
        IngestEvent::new(&purchase("3"), &route("222"), false, &shape),
    ];
    let refs: Vec<&IngestEvent> = parts.iter().collect();
    let body = request_body(&refs, &accounts(), false);
    assert_eq!(check_body(&body), Vec::<String>::new());
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["encoding"], "HEX");
    assert_eq!(
        v["destinations"],
        json!([
            {"reference": "222", "productDestinationId": "222",
             "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
             "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "1112223333"}},
            {"reference": "111", "productDestinationId": "111",
             "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
             "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "1112223333"}}
        ])
    );
    let txs: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["transactionId"].as_str().unwrap()).collect();
    assert_eq!(txs, ["1", "2", "3"]);
    assert_eq!(v["events"][1]["destinationReferences"], json!(["111"]));

    let no_login = Accounts { login_customer_id: None, ..accounts() };
    let v: serde_json::Value = serde_json::from_slice(&request_body(&refs, &no_login, false)).unwrap();
    assert!(v["destinations"][0].get("loginAccount").is_none());
}

#[test]
fn an_events_bytes_do_not_depend_on_its_batch() {
    let shape = shape();
    let e = purchase("1");
    let a = IngestEvent::new(&e, &route(ACTION), false, &shape);
    let b = IngestEvent::new(&e.clone(), &route(ACTION), false, &shape);
    assert_eq!(a.event_sha256, b.event_sha256);
    let alone = request_body(&[&a], &accounts(), false);
    let other = IngestEvent::new(&purchase("2"), &route("5"), false, &shape);
    let shared = request_body(&[&other, &a], &accounts(), false);
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
    assert!(text(&alone).contains(&a.event_json));
    assert!(text(&shared).contains(&a.event_json));
}
