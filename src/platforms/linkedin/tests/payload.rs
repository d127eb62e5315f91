//! The element LinkedIn gets: units, amounts, ids, and what consent leaves out.

use serde_json::json;

use super::*;
use crate::core::pii::sha256_hex;
use crate::platforms::linkedin::{batch_body, decimal_amount, event_id, ConversionElement};

#[test]
fn a_conversion_element_has_linkedins_shape_and_units() {
    let mut e = lead("L-1");
    e.occurred_at = at("2026-11-20T10:15:00.123Z");
    let element = element_of(&e, &route(RULE), false);
    assert_eq!(
        element,
        json!({
            "conversion": URN,
            "conversionHappenedAt": 1_795_169_700_123_i64,
            "conversionValue": {"currencyCode": "EUR", "amount": "59.90"},
            "eventId": "lead:L-1:lead_qualified",
            "user": {"userIds": [
                {"idType": "SHA256_EMAIL", "idValue": sha256_hex(b"jane.doe@example.com")},
                {"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": LI_FAT_ID},
                {"idType": "PLAINTEXT_IP_ADDRESS", "idValue": "203.0.113.7"},
            ]}
        })
    );
    assert_eq!(element["conversionHappenedAt"], json!(e.occurred_at.timestamp_millis()));
    // Names are held only as hashes and userInfo takes plain text: it is never sent.
    assert!(element["user"].get("userInfo").is_none());
}

/// LinkedIn takes no gender or date of birth: the element is the one built without them.
#[test]
fn gender_and_date_of_birth_are_not_sent() {
    use crate::core::pii::{hash_date_of_birth, hash_gender};
    let without = lead("L-1");
    let mut e = without.clone();
    e.identity.gender = Some(hash_gender("m").unwrap());
    e.identity.date_of_birth = Some(hash_date_of_birth("19900131", Utc::now().date_naive()).unwrap());
    assert_eq!(element_of(&e, &route(RULE), false), element_of(&without, &route(RULE), false));
}

#[test]
fn the_rule_may_be_written_as_its_urn() {
    assert_eq!(element_of(&lead("L-1"), &route(URN), false)["conversion"], json!(URN));
}

#[test]
fn the_email_is_hashed_by_linkedins_rule_not_googles() {
    let mut e = lead("L-1");
    e.identity.email = Some(hash_email("Jane.Doe@Gmail.com").unwrap());
    let element = element_of(&e, &route(RULE), false);
    // Trimmed and lowercased; the gmail dots that Google drops are kept.
    assert_eq!(element["user"]["userIds"][0]["idValue"], json!(sha256_hex(b"jane.doe@gmail.com")));
    assert_ne!(element["user"]["userIds"][0]["idValue"], json!(sha256_hex(b"janedoe@gmail.com")));
}

#[test]
fn amounts_are_decimal_strings_without_float_artefacts() {
    let cases: [(f64, &str); 16] = [
        (59.9, "59.90"),
        (59.90, "59.90"),
        (1500.0, "1500.00"),
        (0.0, "0.00"),
        (-0.0, "0.00"),
        (0.5, "0.50"),
        (19.99, "19.99"),
        (0.1 + 0.2, "0.30"),
        (1999.0 / 100.0, "19.99"),
        (0.0001, "0.0001"),
        (1e-10, "0.0000000001"),
        (123.456, "123.456"),
        (1_234_567_890_123.45, "1234567890123.45"),
        (1e21, "1000000000000000000000.00"),
        (99_999_999.99, "99999999.99"),
        (-5.0, "-5.00"),
    ];
    for (value, expected) in cases {
        assert_eq!(decimal_amount(value).as_deref(), Some(expected), "{value:?}");
    }
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(decimal_amount(bad), None);
    }
    let mut e = lead("L-1");
    e.value = Some(0.1 + 0.2);
    assert_eq!(element_of(&e, &route(RULE), false)["conversionValue"]["amount"], json!("0.30"));
}

#[test]
fn no_value_no_conversion_value() {
    let mut e = lead("L-1");
    e.value = None;
    assert!(element_of(&e, &route(RULE), false).get("conversionValue").is_none());
    // A currency alone says nothing about a value.
    e.currency = Some(Currency::parse("USD").unwrap());
    assert!(element_of(&e, &route(RULE), false).get("conversionValue").is_none());
}

#[test]
fn the_event_id_is_the_insight_tags_for_browser_tracked_kinds() {
    let mut e = lead("L-1");
    e.identity.browser_event_id = Some("li-evt-77".into());
    let tracked = Route { browser_tracked: true, ..route(RULE) };
    assert_eq!(event_id(&e, &tracked), "li-evt-77");
    assert_eq!(element_of(&e, &tracked, false)["eventId"], json!("li-evt-77"));
    // Not browser-tracked: Surety's own id, whatever the browser captured.
    assert_eq!(event_id(&e, &route(RULE)), "lead:L-1:lead_qualified");
    // Browser-tracked without a captured id, or a blank one: Surety's id, which the tag can share.
    e.identity.browser_event_id = Some("  ".into());
    assert_eq!(event_id(&e, &tracked), "lead:L-1:lead_qualified");
    e.identity.browser_event_id = None;
    assert_eq!(event_id(&e, &tracked), "lead:L-1:lead_qualified");
}

#[test]
fn stripping_personal_data_leaves_no_user_id() {
    let e = lead("L-1");
    let element = element_of(&e, &route(RULE), true);
    assert_eq!(element["user"], json!({"userIds": []}));
    let text = element.to_string();
    assert!(!text.contains(e.identity.email.as_ref().unwrap().meta.as_str()));
    assert!(!text.contains(LI_FAT_ID));
    assert!(!text.contains("203.0.113.7"));
}

#[test]
fn only_what_is_known_and_well_formed_is_sent() {
    let mut e = lead("L-1");
    e.identity.email = None;
    e.identity.ip = Some("not an address".into());
    let element = element_of(&e, &route(RULE), false);
    assert_eq!(
        element["user"]["userIds"],
        json!([{"idType": "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID", "idValue": LI_FAT_ID}])
    );
    e.identity.ip = Some(" 2001:db8::1 ".into());
    e.identity.li_fat_id = Some(" ".into());
    let element = element_of(&e, &route(RULE), false);
    assert_eq!(element["user"]["userIds"], json!([{"idType": "PLAINTEXT_IP_ADDRESS", "idValue": "2001:db8::1"}]));
}

#[test]
fn the_payload_hash_is_the_elements_and_stable() {
    let e = lead("L-1");
    let a = ConversionElement::new(&e, &route(RULE), false);
    let b = ConversionElement::new(&e.clone(), &route(RULE), false);
    assert_eq!(a.element_sha256, sha256_hex(a.element_json.as_bytes()));
    assert_eq!(a.element_sha256, b.element_sha256);
    assert_ne!(a.element_sha256, ConversionElement::new(&e, &route(RULE), true).element_sha256);
    let other = ConversionElement::new(&lead("L-2"), &route(RULE), false);
    let body: Value = serde_json::from_slice(&batch_body(&[&a, &other])).unwrap();
    let elements = body["elements"].as_array().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1);
    assert_eq!(elements.len(), 2);
    assert_eq!(elements[0].to_string(), a.element_json);
    assert_eq!(elements[1]["eventId"], json!("lead:L-2:lead_qualified"));
}
