//! Planning rules: window, identity, validation by Google's documented rules, dedupe flags.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::core::delivery::reason;
use crate::core::plan::{Planner, Rules};
use crate::core::DeliveryState;
use crate::platforms::google_ads::config::Retraction;
use crate::platforms::google_ads::GoogleAdsRules;

fn rules() -> GoogleAdsRules {
    GoogleAdsRules::new(&config("http://127.0.0.1:9", "http://127.0.0.1:9/token").config)
}

fn check(event: &Event, action: &str, strip: bool) -> Vec<String> {
    rules().validate(event, &route(action), strip)
}

#[track_caller]
fn flags(messages: &[String], needle: &str) {
    assert!(messages.iter().any(|m| m.contains(needle)), "expected a message containing {needle:?}, got {messages:#?}");
}

#[test]
fn window_and_dedupe_flags() {
    let r = rules();
    assert_eq!(r.window(), chrono::Duration::days(90));
    assert!(!r.dedupes_with_browser());
    assert!(r.dedupes_resend(&purchase("1"), &route(ACTION)));
    let mut t = config("http://x", "http://x/token");
    t.config.window_days = 30;
    assert_eq!(GoogleAdsRules::new(&t.config).window(), chrono::Duration::days(30));
}

#[test]
fn identity_is_a_click_id_or_a_user_identifier() {
    let r = rules();
    let mut e = event("order_paid", "order", "1");
    assert!(r.identity_ok(&e), "gclid");
    e.identity.gclid = None;
    assert!(!r.identity_ok(&e), "nothing");
    e.identity.wbraid = Some("wb".into());
    assert!(r.identity_ok(&e), "wbraid");
    e.identity.wbraid = Some("  ".into());
    assert!(!r.identity_ok(&e), "a blank click id is none");
    let mut p = purchase("2");
    p.identity.gclid = None;
    assert!(r.identity_ok(&p), "email");
    p.identity.email = None;
    assert!(r.identity_ok(&p), "phone");
    p.identity.phone = None;
    assert!(r.identity_ok(&p), "a whole address");
    p.identity.postal_code = None;
    assert!(!r.identity_ok(&p), "an address without its postal code is not one");
}

#[test]
fn a_valid_conversion_has_no_messages() {
    assert_eq!(check(&purchase("1042"), ACTION, false), Vec::<String>::new());
    assert_eq!(check(&purchase("1042"), ACTION, true), Vec::<String>::new(), "stripped, the gclid remains");
    assert_eq!(check(&event("lead_qualified", "lead", "9"), ACTION, false), Vec::<String>::new());
    assert_eq!(check(&refund("1042", Some(20.0)), ACTION, false), Vec::<String>::new());
    assert_eq!(check(&refund("1042", None), ACTION, false), Vec::<String>::new(), "zero_value retraction");
}

#[test]
fn documented_rules_are_enforced() {
    let mut e = purchase("1");
    e.identity.gclid = None;
    e.identity.gbraid = Some("gb".into());
    e.identity.wbraid = Some("wb".into());
    flags(&check(&e, ACTION, false), "gbraid and wbraid are both set");

    let mut e = purchase("1");
    e.currency = None;
    flags(&check(&e, ACTION, false), "event.currency: required with conversionValue");

    let mut e = purchase("1");
    e.value = Some(-5.0);
    flags(&check(&e, ACTION, false), "event.conversionValue: must be a number, zero or more");

    let mut e = purchase("1");
    e.identity.gclid = Some("has space".into());
    flags(&check(&e, ACTION, false), "event.adIdentifiers.gclid");

    flags(
        &check(&purchase("1"), "purchase", false),
        "route.event: 'purchase' is not a Google Ads conversion action id",
    );

    let mut e = purchase("1");
    e.identity.country = Some("Germany".into());
    flags(&check(&e, ACTION, false), "address.regionCode");
}

#[test]
fn nothing_left_to_attribute_after_stripping_is_explained() {
    let mut e = purchase("1");
    e.identity.gclid = None;
    let m = check(&e, ACTION, true);
    flags(&m, "needs a click id");
    flags(&m, "ad_user_data consent is not granted");
}

#[test]
fn adjustment_rules() {
    let mut t = config("http://x", "http://x/token");
    t.config.adjustments.retraction = Retraction::Skip;
    let skip = GoogleAdsRules::new(&t.config);
    // Whether it retracts in full is known only at send time, from the ledger.
    assert_eq!(skip.validate(&refund("1", None), &route(ACTION), false), Vec::<String>::new());
    assert_eq!(skip.validate(&refund("1", Some(3.0)), &route(ACTION), false), Vec::<String>::new());

    let mut r = refund("1", Some(3.0));
    r.attributes.insert("restated_value".into(), json!("three"));
    flags(&check(&r, ACTION, false), "attributes.restated_value: must be a number");

    let mut r = refund("1", Some(3.0));
    r.occurred_at = at("2026-11-20T10:00:00Z");
    r.attributes.insert("conversion_occurred_at".into(), json!("2026-09-01T10:00:00Z"));
    flags(&check(&r, ACTION, false), "more than 54 days after the conversion");
    r.attributes.insert("conversion_occurred_at".into(), json!("2026-11-21T10:00:00Z"));
    flags(&check(&r, ACTION, false), "after the adjustment itself");
    r.attributes.insert("conversion_occurred_at".into(), json!("yesterday"));
    flags(&check(&r, ACTION, false), "is not an RFC 3339 time");
    r.attributes.insert("conversion_occurred_at".into(), json!("2026-11-01T10:00:00Z"));
    assert_eq!(check(&r, ACTION, false), Vec::<String>::new());
}

#[test]
fn planning_skips_an_event_no_one_can_be_found_for() {
    let rules: Arc<dyn Rules> = Arc::new(rules());
    let catalog = [("order_paid".to_owned(), vec![("gads".to_owned(), route(ACTION))])].into_iter().collect();
    let planner = Planner::new(catalog, [("gads".to_owned(), rules)].into_iter().collect());
    let mut orphan = event("order_paid", "order", "1");
    orphan.identity.gclid = None;
    orphan.consent.analytics = Some(ConsentState::Granted);
    let plan = planner.plan(&orphan, Utc::now());
    assert_eq!((plan[0].state, plan[0].reason), (DeliveryState::Skipped, Some(reason::NO_IDENTITY)));

    let mut old = purchase("2");
    old.occurred_at = Utc::now() - Duration::days(91);
    let plan = planner.plan(&old, Utc::now());
    assert_eq!((plan[0].state, plan[0].reason), (DeliveryState::Skipped, Some(reason::OUTSIDE_WINDOW)));

    let plan = planner.plan(&purchase("3"), Utc::now());
    assert_eq!(plan[0].state, DeliveryState::Pending);
}
