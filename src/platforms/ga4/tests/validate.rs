//! Every documented rule fires, and a valid purchase passes.

use serde_json::json;

use super::*;
use crate::core::plan::Rules;
use crate::platforms::ga4::{check_request, Ga4Rules};

fn rules() -> Ga4Rules {
    Ga4Rules::new(&config("http://127.0.0.1:9").config)
}

fn problems(e: &Event, route_event: &str) -> Vec<String> {
    rules().validate(e, &route(route_event), false)
}

#[track_caller]
fn fires(e: &Event, route_event: &str, needle: &str) {
    let p = problems(e, route_event);
    assert!(p.iter().any(|m| m.contains(needle)), "expected a message containing {needle:?}, got {p:#?}");
}

#[test]
fn a_valid_purchase_passes() {
    assert_eq!(problems(&purchase("1042"), "purchase"), Vec::<String>::new());
    assert_eq!(rules().validate(&purchase("1042"), &route("purchase"), true), Vec::<String>::new());
    let mut refund = purchase("1042");
    refund.items.clear();
    assert_eq!(problems(&refund, "refund"), Vec::<String>::new());
    assert_eq!(problems(&event("lead_created", "lead", "L1"), "generate_lead"), Vec::<String>::new());
}

#[test]
fn client_id_is_required() {
    let mut e = purchase("1");
    e.identity.client_id = None;
    fires(&e, "purchase", "client_id: required");
    e.identity.client_id = Some("  ".into());
    fires(&e, "purchase", "client_id: required");
}

#[test]
fn user_id_length() {
    let mut e = purchase("1");
    e.identity.user_id = Some("u".repeat(256));
    assert!(problems(&e, "purchase").is_empty());
    e.identity.user_id = Some("u".repeat(257));
    fires(&e, "purchase", "user_id: must be at most 256 characters");
}

#[test]
fn event_name_rules() {
    let e = purchase("1");
    fires(&e, &"a".repeat(41), "events[0].name");
    assert!(problems(&event("lead_created", "lead", "1"), &"a".repeat(40)).is_empty());
    fires(&e, "add-to-cart", "may only contain letters, digits and underscores");
    fires(&e, "1st_purchase", "must start with a letter");
    fires(&e, "", "must not be empty");
    for reserved in [
        "session_start",
        "first_visit",
        "user_engagement",
        "app_remove",
        "error",
        "screen_view",
        "ad_impression",
        "in_app_purchase",
    ] {
        fires(&e, reserved, &format!("events[0].name: '{reserved}' is reserved"));
    }
    for prefix in ["_x", "firebase_x", "ga_x", "google_x"] {
        fires(&e, prefix, "reserved prefix");
    }
}

#[test]
fn at_most_25_params() {
    let mut e = event("lead_created", "lead", "1");
    for i in 0..25 {
        e.attributes.insert(format!("p{i}"), json!(i));
    }
    assert!(problems(&e, "generate_lead").is_empty());
    e.attributes.insert("p25".into(), json!(25));
    fires(&e, "generate_lead", "events[0].params: at most 25 parameters (has 26)");
}

#[test]
fn param_name_rules() {
    let with = |name: &str| {
        let mut e = event("lead_created", "lead", "1");
        e.attributes.insert(name.into(), json!("x"));
        e
    };
    fires(&with("bad-name"), "generate_lead", "events[0].params.bad-name: the name may only contain");
    fires(&with("9lives"), "generate_lead", "must start with a letter");
    fires(&with(&"p".repeat(41)), "generate_lead", "at most 40 characters");
    for reserved in ["_p", "firebase_p", "ga_p", "google_p", "gtag.p"] {
        fires(&with(reserved), "generate_lead", "reserved prefix");
    }
    fires(&with("firebase_conversion"), "generate_lead", "events[0].params.firebase_conversion");
}

#[test]
fn string_values_at_most_100_chars() {
    let mut e = event("lead_created", "lead", "1");
    e.attributes.insert("note".into(), json!("é".repeat(100)));
    assert!(problems(&e, "generate_lead").is_empty(), "characters, not bytes");
    e.attributes.insert("note".into(), json!("x".repeat(101)));
    fires(&e, "generate_lead", "events[0].params.note: string values must be at most 100 characters (has 101)");
    let mut p = purchase("1");
    p.items[0].name = Some("n".repeat(101));
    fires(&p, "purchase", "events[0].params.items[0].item_name: string values must be at most 100");
}

#[test]
fn purchase_and_refund_need_a_transaction_id() {
    let mut e = purchase("1");
    e.subject = Subject { kind: "payment".into(), id: "pi_1".into() };
    fires(&e, "purchase", "events[0].params.transaction_id: required for purchase");
    fires(&e, "refund", "events[0].params.transaction_id: required for refund");
    e.attributes.insert("transaction_id".into(), json!(""));
    fires(&e, "purchase", "transaction_id: required");
    e.attributes.insert("transaction_id".into(), json!("T-1"));
    assert!(problems(&e, "purchase").is_empty());
}

#[test]
fn currency_is_required_with_value() {
    let mut e = purchase("1");
    e.currency = None;
    fires(&e, "purchase", "events[0].params.currency: required when value is set");
    e.attributes.insert("currency".into(), json!("euro"));
    fires(&e, "purchase", "events[0].params.currency: must be a three-letter ISO 4217 code");
    let mut e = event("lead_created", "lead", "1");
    e.attributes.insert("value".into(), json!("lots"));
    fires(&e, "generate_lead", "events[0].params.value: must be a number");
}

#[test]
fn items_need_an_id_or_a_name() {
    let mut e = purchase("1");
    e.items.push(Item { id: None, name: None, price: Some(1.0), quantity: Some(1) });
    fires(&e, "purchase", "events[0].params.items[1]: needs item_id or item_name");
    e.items[1].name = Some("Scarf".into());
    assert!(problems(&e, "purchase").is_empty());
}

#[test]
fn at_most_10_custom_item_params() {
    // Surety's own items carry only standard fields, so check the rule on a request directly.
    let mut item = serde_json::Map::new();
    item.insert("item_id".into(), json!("SKU"));
    for i in 0..10 {
        item.insert(format!("custom_{i}"), json!(i));
    }
    let request = |item: &serde_json::Map<String, serde_json::Value>| {
        json!({"client_id": "1.2", "events": [{"name": "purchase",
            "params": {"transaction_id": "T", "items": [item]}}]})
    };
    assert!(check_request(request(&item).as_object().unwrap()).is_empty());
    item.insert("custom_10".into(), json!(10));
    let p = check_request(request(&item).as_object().unwrap());
    assert!(p.iter().any(|m| m.contains("items[0]: at most 10 custom item parameters (has 11)")), "{p:?}");
}

#[test]
fn at_most_25_events_per_request() {
    let events: Vec<_> = (0..26).map(|_| json!({"name": "generate_lead"})).collect();
    let p = check_request(json!({"client_id": "1.2", "events": events}).as_object().unwrap());
    assert!(p.iter().any(|m| m.starts_with("events: at most 25")), "{p:?}");
}

#[test]
fn body_must_stay_under_130kb() {
    let mut e = purchase("1");
    e.items = (0..1500)
        .map(|i| Item {
            id: Some(format!("SKU-{i:06}")),
            name: Some("n".repeat(60)),
            price: Some(1.5),
            quantity: Some(1),
        })
        .collect();
    fires(&e, "purchase", "GA4 takes less than 130000 bytes per request");
}

#[test]
fn other_rules() {
    let r = rules();
    assert_eq!(r.window(), chrono::Duration::hours(72));
    let mut c = config("http://127.0.0.1:9").config;
    c.window_hours = 500; // refused by config validation; still never above GA4's 72 h
    assert_eq!(Ga4Rules::new(&c).window(), chrono::Duration::hours(72));
    c.window_hours = 24;
    assert_eq!(Ga4Rules::new(&c).window(), chrono::Duration::hours(24));

    let mut e = purchase("1");
    assert!(r.identity_ok(&e));
    e.identity.client_id = Some(String::new());
    assert!(!r.identity_ok(&e));
    e.identity.client_id = None;
    assert!(!r.identity_ok(&e));

    assert!(!r.dedupes_with_browser());
    assert!(r.dedupes_resend(&purchase("1"), &route("purchase")));
    assert!(!r.dedupes_resend(&purchase("1"), &route("refund")), "GA4 dedupes purchases only");
    let mut no_id = purchase("1");
    no_id.subject.kind = "payment".into();
    assert!(!r.dedupes_resend(&no_id, &route("purchase")));
    assert!(!r.dedupes_resend(&event("lead_created", "lead", "1"), &route("generate_lead")));
}
