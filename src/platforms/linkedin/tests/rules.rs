//! The rules planning asks of LinkedIn: window, identity, browser overlap, validation — alone
//! and through the real planner.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::core::delivery::reason;
use crate::core::plan::{ConsentPurpose, OnPersonalDataDenied, Planner, Rules};
use crate::core::DeliveryState;
use crate::platforms::linkedin::{check_element, element_index, is_decimal, LinkedinRules};

fn rules() -> LinkedinRules {
    LinkedinRules::new(&config("http://127.0.0.1:1").config)
}

#[test]
fn the_window_is_ninety_days_at_most() {
    assert_eq!(rules().window(), Duration::days(90));
    let mut t = config("http://127.0.0.1:1");
    t.config.window_days = 30;
    assert_eq!(LinkedinRules::new(&t.config).window(), Duration::days(30));
    t.config.window_days = 400;
    assert_eq!(LinkedinRules::new(&t.config).window(), Duration::days(90));
}

#[test]
fn identity_is_a_hashed_email_or_the_click_cookie_never_an_address_alone() {
    let r = rules();
    assert!(r.identity_ok(&lead("L-1")));
    let mut e = lead("L-1");
    e.identity.li_fat_id = None;
    assert!(r.identity_ok(&e), "email alone");
    e.identity.email = None;
    e.identity.li_fat_id = Some(LI_FAT_ID.into());
    assert!(r.identity_ok(&e), "li_fat_id alone");
    e.identity.li_fat_id = Some("  ".into());
    assert!(!r.identity_ok(&e), "a blank cookie is none");
    e.identity.li_fat_id = None;
    assert!(e.identity.ip.is_some());
    assert!(!r.identity_ok(&e), "an IP address alone is not an identity");
}

#[test]
fn linkedin_dedupes_with_the_insight_tag_and_on_resends() {
    let r = rules();
    assert!(r.dedupes_with_browser());
    assert!(r.dedupes_resend(&lead("L-1"), &route(RULE)));
}

#[test]
fn the_consent_policy_comes_from_the_config() {
    let mut t = config("http://127.0.0.1:1");
    t.config.common.consent = ConsentConfig {
        purpose: ConsentPurpose::AdUserData,
        on_personal_data_denied: OnPersonalDataDenied::Skip,
        assume_granted: true,
    };
    let r = LinkedinRules::new(&t.config);
    let p = r.consent_policy();
    assert_eq!(
        (p.purpose, p.on_personal_data_denied, p.assume_granted),
        (ConsentPurpose::AdUserData, OnPersonalDataDenied::Skip, true)
    );
}

#[test]
fn validation_names_every_broken_rule() {
    let r = rules();
    assert_eq!(r.validate(&lead("L-1"), &route(RULE), false), Vec::<String>::new());
    assert_eq!(r.validate(&lead("L-1"), &route(URN), false), Vec::<String>::new());

    let mut e = lead("L-1");
    e.currency = None;
    assert_eq!(
        r.validate(&e, &route(RULE), false),
        ["conversionValue.currencyCode: required with a value, a three-letter ISO 4217 code"]
    );
    e = lead("L-1");
    e.value = Some(-5.0);
    assert_eq!(
        r.validate(&e, &route(RULE), false),
        ["conversionValue.amount: must not be negative (LinkedIn has no refunds)"]
    );

    let m = r.validate(&lead("L-1"), &route("Purchase"), false);
    assert_eq!(m, ["conversion: must be a conversion rule URN urn:lla:llaPartnerConversion:ID"]);

    let m = r.validate(&lead("L-1"), &route(RULE), true);
    assert_eq!(m.len(), 1);
    assert!(m[0].starts_with("user.userIds: at least one user id is required"), "{m:?}");
    let mut e = lead("L-1");
    e.identity.email = None;
    e.identity.ip = None;
    assert_eq!(r.validate(&e, &route(RULE), false), Vec::<String>::new(), "li_fat_id suffices");
}

#[test]
fn element_checks_catch_what_the_builder_never_makes() {
    let valid = element_of(&lead("L-1"), &route(RULE), false);
    assert!(check_element(&valid).is_empty());
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut e = valid.clone();
        f(&mut e);
        check_element(&e)
    };
    let m = broken(&|e| e["conversionValue"]["amount"] = json!(59.9));
    assert_eq!(m, ["conversionValue.amount: must be a decimal string such as \"59.90\""]);
    let m = broken(&|e| e["conversionValue"]["amount"] = json!("1e3"));
    assert_eq!(m.len(), 1);
    let m = broken(&|e| e["conversionHappenedAt"] = json!("1795169700123"));
    assert_eq!(m, ["conversionHappenedAt: must be a positive number of milliseconds since the epoch"]);
    let m = broken(&|e| e["eventId"] = json!(""));
    assert_eq!(m, ["eventId: required for deduplication, and never empty"]);
    let m = broken(&|e| e["user"]["userIds"][0]["idValue"] = json!("A".repeat(64)));
    assert_eq!(m, ["user.userIds[0].idValue: a SHA256_EMAIL is 64 lowercase hex characters"]);
    let m = broken(&|e| e["user"]["userIds"][1]["idType"] = json!("EMAIL"));
    assert!(m[0].starts_with("user.userIds[1].idType: 'EMAIL' is not one of SHA256_EMAIL"), "{m:?}");
    let m = broken(&|e| e["user"] = json!({}));
    assert_eq!(m.len(), 1);
    assert_eq!(check_element(&json!([])), ["element: must be an object"]);
}

#[test]
fn decimals_and_element_indexes() {
    for ok in ["0", "59.90", "1500", "0.0001"] {
        assert!(is_decimal(ok), "{ok}");
    }
    for bad in ["", ".5", "5.", "-5", "1e3", "5,00", "NaN", " 5"] {
        assert!(!is_decimal(bad), "{bad}");
    }
    assert_eq!(element_index("ERROR :: /elements/3/conversionValue/amount :: bad"), Some(3));
    assert_eq!(element_index("ERROR :: /elements/12 :: bad"), Some(12));
    assert_eq!(element_index("elements[4].eventId: bad"), Some(4));
    assert_eq!(element_index("/elements/x/y"), None);
    assert_eq!(element_index("/elements/3x/y"), None);
    assert_eq!(element_index("no index"), None);
}

#[test]
fn through_the_planner() {
    let catalog =
        [("lead_qualified".to_owned(), vec![("linkedin".to_owned(), Route { browser_tracked: true, ..route(RULE) })])]
            .into_iter()
            .collect();
    let rules: Arc<dyn Rules> = Arc::new(rules());
    let planner = Planner::new(catalog, [("linkedin".to_owned(), rules)].into_iter().collect());
    let now = Utc::now();
    let plan = |e: &Event| planner.plan(e, now).remove(0);

    // Browser-tracked, yet sent: LinkedIn keeps one of the two on the shared eventId.
    let p = plan(&lead("L-1"));
    assert_eq!((p.state, p.reason), (DeliveryState::Pending, None));

    let mut e = lead("L-1");
    e.identity.email = None;
    e.identity.li_fat_id = None;
    let p = plan(&e);
    assert_eq!((p.state, p.reason), (DeliveryState::Skipped, Some(reason::NO_IDENTITY)));

    let mut e = lead("L-1");
    e.occurred_at = now - Duration::days(91);
    let p = plan(&e);
    assert_eq!((p.state, p.reason), (DeliveryState::Skipped, Some(reason::OUTSIDE_WINDOW)));

    // Consent strips the email and the cookie: nothing is left to match on.
    let mut e = lead("L-1");
    e.consent.ad_user_data = Some(ConsentState::Denied);
    let p = plan(&e);
    assert!(p.strip_personal);
    assert_eq!((p.state, p.reason), (DeliveryState::Rejected, Some(reason::INVALID)));
    assert!(p.messages[0].starts_with("user.userIds:"), "{:?}", p.messages);
}
