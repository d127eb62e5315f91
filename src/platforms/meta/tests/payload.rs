//! The event object: fields, units, ids, hashing choices, consent stripping, custom data, LDU.

use serde_json::json;

use super::*;
use crate::core::pii::sha256_hex;
use crate::platforms::meta::{event_id, order_id, request_body, Ldu, ServerEvent, PERSONAL_KEYS};

#[test]
fn event_fields_and_units() {
    let mut e = purchase("1042");
    e.occurred_at = at("2026-11-20T10:15:00.987Z");
    let o = object(&e, &route("Purchase"), false);
    assert_eq!(o["event_name"], json!("Purchase"));
    assert_eq!(o["event_time"], json!(1_795_169_700_i64), "Unix seconds, fraction dropped");
    assert_eq!(o["event_id"], json!("order:1042:order_paid"));
    assert_eq!(o["action_source"], json!("system_generated"));
    assert!(o.get("event_source_url").is_none());
    assert!(o.get("data_processing_options").is_none(), "LDU is off unless configured");
}

#[test]
fn user_data_hashes_and_plain_fields() {
    let e = purchase("1042");
    let ud = object(&e, &route("Purchase"), false)["user_data"].clone();
    let id = &e.identity;
    assert_eq!(ud["em"], json!([id.email.as_ref().unwrap().meta.as_str()]));
    assert_eq!(ud["ph"], json!([id.phone.as_ref().unwrap().meta.as_str()]));
    assert_eq!(ud["fn"], json!([id.first_name.as_ref().unwrap().meta.as_str()]));
    assert_eq!(ud["ln"], json!([id.last_name.as_ref().unwrap().meta.as_str()]));
    assert_eq!(ud["ge"], json!([id.gender.as_ref().unwrap().meta.as_str()]));
    assert_eq!(ud["db"], json!([id.date_of_birth.as_ref().unwrap().meta.as_str()]));
    // "Female" and "1990-01-31" go out in Meta's documented forms, `f` and `YYYYMMDD`.
    assert_eq!(ud["ge"][0], json!(sha256_hex(b"f")));
    assert_eq!(ud["db"][0], json!(sha256_hex(b"19900131")));
    // Meta keeps gmail dots and writes phones without '+': the meta hashes, not Google's.
    assert_eq!(ud["em"][0], json!(sha256_hex(b"jane.doe@gmail.com")));
    assert_eq!(ud["ph"][0], json!(sha256_hex(b"491512345678")));
    assert_eq!(ud["ct"], json!([sha256_hex(b"berlin")]));
    assert_eq!(ud["st"], json!([sha256_hex(b"be")]));
    assert_eq!(ud["zp"], json!([sha256_hex(b"10115")]));
    assert_eq!(ud["country"], json!([sha256_hex(b"de")]));
    assert_eq!(ud["external_id"], json!([sha256_hex(b"u-77")]));
    assert_eq!(ud["fbp"], json!("fb.1.1700000000000.1234567890"));
    assert_eq!(ud["fbc"], json!("fb.1.1700000000000.AbCdEf"));
    assert_eq!(ud["client_ip_address"], json!("203.0.113.7"));
    assert_eq!(ud["client_user_agent"], json!("Mozilla/5.0 (X11; Linux x86_64)"));
    assert!(ud.get("street").is_none() && ud.get("sha256_street").is_none(), "Meta has no street key");
}

#[test]
fn gender_and_date_of_birth_are_sent_only_when_present() {
    let mut e = purchase("1042");
    e.identity.gender = None;
    e.identity.date_of_birth = None;
    let ud = object(&e, &route("Purchase"), false)["user_data"].clone();
    assert!(ud.get("ge").is_none() && ud.get("db").is_none(), "{ud}");
    e.identity.gender = Some(crate::core::pii::hash_gender(" M ").unwrap());
    let o = object(&e, &route("Purchase"), false);
    assert_eq!(o["user_data"]["ge"], json!([sha256_hex(b"m")]));
    assert!(o["user_data"].get("db").is_none());
    assert_eq!(crate::platforms::meta::check_event(&o), Vec::<String>::new(), "hashed ge passes Meta's rules");
}

#[test]
fn a_malformed_ip_is_left_out() {
    let mut e = purchase("1");
    e.identity.ip = Some("not-an-ip".into());
    let ud = object(&e, &route("Purchase"), false)["user_data"].clone();
    assert!(ud.get("client_ip_address").is_none());
    e.identity.ip = Some(" 2001:DB8::1 ".into());
    let ud = object(&e, &route("Purchase"), false)["user_data"].clone();
    assert_eq!(ud["client_ip_address"], json!("2001:db8::1"));
}

#[test]
fn strip_personal_leaves_out_every_personal_key_and_keeps_the_rest() {
    let e = purchase("1042");
    let o = object(&e, &route("Purchase"), true);
    let ud = o["user_data"].as_object().unwrap();
    for key in PERSONAL_KEYS {
        assert!(!ud.contains_key(key), "{key} must be stripped: {ud:?}");
    }
    for key in ["ge", "db"] {
        assert!(PERSONAL_KEYS.contains(&key), "{key} is personal");
    }
    for key in ["external_id", "fbp", "fbc", "client_ip_address", "client_user_agent"] {
        assert!(ud.contains_key(key), "{key} must stay: {ud:?}");
    }
    // Nothing personal hides elsewhere in the object.
    let text = o.to_string();
    let id = &e.identity;
    for h in [&id.email, &id.phone, &id.first_name, &id.last_name, &id.gender, &id.date_of_birth] {
        assert!(!text.contains(h.as_ref().unwrap().meta.as_str()));
    }
    assert!(!text.contains(&sha256_hex(b"berlin")));
}

#[test]
fn event_id_follows_the_browser_only_for_browser_tracked_kinds() {
    let mut e = purchase("1042");
    let mut r = route("Purchase");
    assert_eq!(event_id(&e, &r), "order:1042:order_paid");
    r.browser_tracked = true;
    assert_eq!(event_id(&e, &r), "order:1042:order_paid", "no captured browser id: the documented derivation");
    e.identity.browser_event_id = Some("pixel-evt-9f1c".into());
    assert_eq!(event_id(&e, &r), "pixel-evt-9f1c");
    assert_eq!(object(&e, &r, false)["event_id"], json!("pixel-evt-9f1c"));
    r.browser_tracked = false;
    assert_eq!(event_id(&e, &r), "order:1042:order_paid", "not browser tracked: our own id");
    e.identity.browser_event_id = Some("  ".into());
    r.browser_tracked = true;
    assert_eq!(event_id(&e, &r), "order:1042:order_paid", "a blank browser id is no id");
    // A source-given id is used as is.
    e.event_id = crate::core::EventId::parse("pi_3Mtw").unwrap();
    assert_eq!(event_id(&e, &route("Purchase")), "pi_3Mtw");
}

#[test]
fn action_source_from_route_else_destination_default() {
    let e = purchase("1");
    let mut r = route("Purchase");
    r.action_source = Some("physical_store".into());
    assert_eq!(object(&e, &r, false)["action_source"], json!("physical_store"));
    let settings = Settings { default_action_source: "email".into(), ldu: None };
    assert_eq!(event_object(&e, &route("Purchase"), false, &settings)["action_source"], json!("email"));
}

#[test]
fn event_source_url_comes_from_the_attribute() {
    let mut e = purchase("1");
    e.attributes.insert("event_source_url".into(), json!("https://shop.example/checkout"));
    assert_eq!(object(&e, &route("Purchase"), false)["event_source_url"], json!("https://shop.example/checkout"));
}

#[test]
fn custom_data() {
    let mut e = purchase("1042");
    e.attributes.insert("content_name".into(), json!("Summer sale"));
    e.attributes.insert("payment_reference".into(), json!("pay_123"));
    let c = object(&e, &route("Purchase"), false)["custom_data"].clone();
    assert_eq!(
        c,
        json!({
            "value": 59.9, "currency": "EUR", "order_id": "1042",
            "contents": [{"id": "SKU-1", "quantity": 1, "item_price": 39.9}, {"id": "SKU-2", "quantity": 2, "item_price": 10.0}],
            "content_type": "product", "num_items": 3, "content_name": "Summer sale"
        })
    );
    // Items without an id count, but have no contents form.
    e.items = vec![Item { id: None, name: Some("Gift".into()), price: None, quantity: None }];
    let c = object(&e, &route("Purchase"), false)["custom_data"].clone();
    assert!(c.get("contents").is_none());
    assert_eq!(c["num_items"], json!(1));
    // No value, no items, no order: no custom_data at all.
    let lead = event("lead_qualified", "lead", "L-1");
    assert!(object(&lead, &route("Lead"), false).get("custom_data").is_none());
}

#[test]
fn order_id_from_attribute_then_order_subject() {
    let mut e = purchase("1042");
    assert_eq!(order_id(&e).as_deref(), Some("1042"));
    e.attributes.insert("order_id".into(), json!(5001));
    assert_eq!(order_id(&e).as_deref(), Some("5001"));
    e.attributes.insert("order_id".into(), json!("A-7"));
    assert_eq!(order_id(&e).as_deref(), Some("A-7"));
    assert_eq!(order_id(&event("lead_qualified", "lead", "L-1")), None);
}

#[test]
fn limited_data_use() {
    let e = purchase("1");
    let settings = Settings {
        default_action_source: "system_generated".into(),
        ldu: Some(Ldu { options: vec!["LDU".into()], country: Some(0), state: Some(0) }),
    };
    let o = event_object(&e, &route("Purchase"), false, &settings);
    assert_eq!(o["data_processing_options"], json!(["LDU"]));
    assert_eq!(o["data_processing_options_country"], json!(0));
    assert_eq!(o["data_processing_options_state"], json!(0));
}

#[test]
fn request_body_and_stable_hash() {
    let s = Settings::default();
    let (a, b) = (purchase("1"), purchase("2"));
    let pa = ServerEvent::new(&a, &route("Purchase"), false, &s);
    let pb = ServerEvent::new(&b, &route("Purchase"), false, &s);
    let body: Value = serde_json::from_slice(&request_body(&[&pa, &pb], None)).unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"][1]["custom_data"]["order_id"], json!("2"));
    assert!(body.get("test_event_code").is_none());
    let body: Value = serde_json::from_slice(&request_body(&[&pa], Some("TEST\"42"))).unwrap();
    assert_eq!(body["test_event_code"], json!("TEST\"42"));
    assert!(body.get("access_token").is_none(), "the token travels in the query only");
    // Same delivery, same bytes, same hash (G2).
    assert_eq!(ServerEvent::new(&a, &route("Purchase"), false, &s).event_sha256, pa.event_sha256);
    assert_eq!(pa.event_sha256, sha256_hex(pa.event_json.as_bytes()));
}
