//! The rules planning applies (`MetaRules`): identity, validation, window, dedupe flags.

use serde_json::json;

use super::*;
use crate::core::plan::{ConsentPurpose, Rules};
use crate::platforms::meta::{check_event, MetaRules};

fn rules() -> MetaRules {
    MetaRules::new(&config("http://127.0.0.1:1").config)
}

#[track_caller]
fn flags(problems: &[String], prefix: &str) {
    assert!(problems.iter().any(|p| p.starts_with(prefix)), "expected a problem at {prefix}, got {problems:#?}");
}

#[test]
fn window_flags_and_consent_come_from_config() {
    let mut t = config("http://127.0.0.1:1");
    t.config.window_days = 3;
    t.config.common.consent.purpose = ConsentPurpose::AdUserData;
    let r = MetaRules::new(&t.config);
    assert_eq!(r.window(), chrono::Duration::days(3));
    assert_eq!(r.consent_policy().purpose, ConsentPurpose::AdUserData);
    t.config.window_days = 30;
    assert_eq!(MetaRules::new(&t.config).window(), chrono::Duration::days(7), "never beyond Meta's 7 days");
    assert!(r.dedupes_with_browser());
    assert!(r.dedupes_resend(&purchase("1"), &route("Purchase")));
}

#[test]
fn identity_needs_something_meta_matches_on() {
    let r = rules();
    let mut e = event("lead_qualified", "lead", "L-1");
    assert!(r.identity_ok(&e), "fbp");
    e.identity = Identity::default();
    assert!(!r.identity_ok(&e));
    e.identity.first_name = Some(hash_name("Jane").unwrap());
    e.identity.city = Some("Berlin".into());
    assert!(!r.identity_ok(&e), "a name and a city alone are not enough");
    e.identity.ip = Some("203.0.113.7".into());
    assert!(!r.identity_ok(&e), "an IP without a user agent is not enough");
    e.identity.user_agent = Some("Mozilla/5.0".into());
    assert!(r.identity_ok(&e), "IP with user agent");
    for set in [
        |i: &mut Identity| i.email = Some(hash_email("a@example.com").unwrap()),
        |i: &mut Identity| i.phone = Some(hash_phone("+49 151 2345678").unwrap()),
        |i: &mut Identity| i.user_id = Some("u-1".into()),
        |i: &mut Identity| i.fbc = Some("fb.1.1.x".into()),
        |i: &mut Identity| i.fbp = Some("fb.1.1.1".into()),
    ] {
        let mut e = event("lead_qualified", "lead", "L-1");
        e.identity = Identity::default();
        set(&mut e.identity);
        assert!(r.identity_ok(&e), "{:?}", e.identity);
    }
}

#[test]
fn a_valid_purchase_and_a_lead_pass() {
    let r = rules();
    assert_eq!(r.validate(&purchase("1"), &route("Purchase"), false), Vec::<String>::new());
    assert_eq!(r.validate(&purchase("1"), &route("Purchase"), true), Vec::<String>::new());
    assert_eq!(r.validate(&event("lead_qualified", "lead", "L-1"), &route("Lead"), false), Vec::<String>::new());
}

#[test]
fn stripping_what_made_an_event_matchable_is_refused() {
    let mut e = event("lead_qualified", "lead", "L-1");
    e.identity = Identity { email: Some(hash_email("a@example.com").unwrap()), ..Identity::default() };
    let r = rules();
    assert!(r.identity_ok(&e));
    assert!(r.validate(&e, &route("Lead"), false).is_empty());
    flags(&r.validate(&e, &route("Lead"), true), "user_data: no customer information");
}

#[test]
fn website_needs_a_source_url_and_a_user_agent() {
    let r = rules();
    let mut e = purchase("1");
    e.identity.user_agent = None;
    let mut web = route("Purchase");
    web.action_source = Some("website".into());
    let p = r.validate(&e, &web, false);
    flags(&p, "event_source_url: required for action_source website");
    flags(&p, "user_data.client_user_agent: required");
    e.attributes.insert("event_source_url".into(), json!("/checkout"));
    flags(&r.validate(&e, &web, false), "event_source_url:");
    e.attributes.insert("event_source_url".into(), json!("https://shop.example/checkout"));
    e.identity.user_agent = Some("Mozilla/5.0".into());
    assert_eq!(r.validate(&e, &web, false), Vec::<String>::new());
}

#[test]
fn action_source_must_be_one_of_metas() {
    let r = rules();
    let mut rt = route("Purchase");
    rt.action_source = Some("web".into());
    flags(&r.validate(&purchase("1"), &rt, false), "action_source: 'web' is not one of");
    rt.action_source = Some("app".into());
    flags(&r.validate(&purchase("1"), &rt, false), "app_data: required for action_source app");
    for ok in ["email", "phone_call", "chat", "physical_store", "system_generated", "business_messaging", "other"] {
        rt.action_source = Some(ok.into());
        assert_eq!(r.validate(&purchase("1"), &rt, false), Vec::<String>::new(), "{ok}");
    }
}

#[test]
fn purchase_needs_value_and_currency() {
    let r = rules();
    let mut e = purchase("1");
    e.currency = None;
    flags(&r.validate(&e, &route("Purchase"), false), "custom_data.currency: required with value");
    e.value = None;
    flags(&r.validate(&e, &route("Purchase"), false), "custom_data.value: required for Purchase");
    flags(&r.validate(&e, &route("Purchase"), false), "custom_data.currency: required for Purchase");
    // Other events may go without.
    assert_eq!(r.validate(&e, &route("Subscribe"), false), Vec::<String>::new());
    let mut bare = event("order_paid", "user", "u1");
    bare.value = None;
    flags(&r.validate(&bare, &route("Purchase"), false), "custom_data.value and custom_data.currency");
}

#[test]
fn empty_event_name_is_refused() {
    flags(&rules().validate(&purchase("1"), &route(""), false), "event_name: required");
}

/// Rules on the object itself, for shapes the builder never makes but an edited payload could.
#[test]
fn object_level_rules() {
    let good = object(&purchase("1"), &route("Purchase"), false);
    assert_eq!(check_event(&good), Vec::<String>::new());
    let with = |path: &[&str], v: Value| {
        let mut o = good.clone();
        let mut at = &mut o;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        check_event(&o)
    };
    flags(&with(&["event_time"], json!(1_795_169_700_000_i64)), "event_time: must be a Unix time in seconds");
    flags(&with(&["event_time"], json!("now")), "event_time: required");
    flags(&with(&["event_id"], json!("")), "event_id:");
    flags(&with(&["user_data", "em"], json!(["jane@example.com"])), "user_data.em: must be SHA-256 hashed");
    flags(&with(&["user_data", "ct"], json!("berlin")), "user_data.ct: must be SHA-256 hashed");
    let upper = "A".repeat(64);
    flags(&with(&["user_data", "ph"], json!([upper])), "user_data.ph:");
    let hex = "a".repeat(64);
    flags(&with(&["user_data", "fbp"], json!(hex)), "user_data.fbp: must not be hashed");
    flags(&with(&["user_data", "client_ip_address"], json!("1.2.3")), "user_data.client_ip_address:");
    flags(&with(&["user_data", "external_id"], json!([""])), "user_data.external_id:");
    flags(&with(&["user_data"], json!("x")), "user_data: must be an object");
    flags(&with(&["custom_data", "value"], json!("59.9")), "custom_data.value: must be a number");
    flags(&with(&["custom_data", "currency"], json!("EURO")), "custom_data.currency: must be a three-letter");
    flags(&with(&["custom_data", "contents"], json!([{"quantity": 1}])), "custom_data.contents[0].id: required");
    flags(
        &with(&["custom_data", "contents"], json!([{"id": "x", "quantity": 1.5}])),
        "custom_data.contents[0].quantity",
    );
    flags(&with(&["data_processing_options"], json!(["XYZ"])), "data_processing_options:");
    let mut no_user_data = good.clone();
    no_user_data.as_object_mut().unwrap().remove("user_data");
    flags(&check_event(&no_user_data), "user_data: required");
    let mut no_source = good.clone();
    no_source.as_object_mut().unwrap().remove("action_source");
    flags(&check_event(&no_source), "action_source: required");
    flags(&check_event(&json!([])), "event: must be an object");
}

#[test]
fn a_browser_tracked_kind_past_the_dedupe_window_is_skipped_at_planning() {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use crate::core::delivery::reason;
    use crate::core::plan::Planner;
    use crate::core::DeliveryState;

    let mut t = config("http://127.0.0.1:1");
    let r = MetaRules::new(&t.config);
    assert_eq!(r.browser_dedupe_window(), Some(chrono::Duration::hours(48)), "Meta's documented 48 h");
    t.config.dedupe_window_secs = 3600;
    assert_eq!(MetaRules::new(&t.config).browser_dedupe_window(), Some(chrono::Duration::hours(1)));

    let tracked = Route { browser_tracked: true, ..route("Purchase") };
    let mut catalog = BTreeMap::new();
    catalog.insert("order_paid".to_owned(), vec![("meta".to_owned(), tracked.clone())]);
    let mut all: BTreeMap<String, Arc<dyn Rules>> = BTreeMap::new();
    all.insert("meta".into(), Arc::new(r.clone()));
    let planner = Planner::new(catalog, all);

    let mut e = purchase("1");
    let now = Utc::now();
    e.occurred_at = now - chrono::Duration::hours(49);
    let p = &planner.plan(&e, now)[0];
    assert_eq!((p.state, p.reason), (DeliveryState::Skipped, Some(reason::BROWSER_TRACKED)), "{p:?}");
    assert!(p.messages[0].starts_with("outside the dedupe window"), "{:?}", p.messages);
    e.occurred_at = now - chrono::Duration::hours(47);
    assert_eq!(planner.plan(&e, now)[0].state, DeliveryState::Pending);
    // Not browser-tracked: no browser copy to double, nothing to skip.
    e.occurred_at = now - chrono::Duration::hours(49);
    assert!(r.dedupes_resend_at(&e, &route("Purchase"), now));
    assert!(!r.dedupes_resend_at(&e, &tracked, now), "a resend past the window is not deduplicated");
}
