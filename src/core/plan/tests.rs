use std::sync::Mutex;

use chrono::TimeZone;

use super::*;
use crate::core::pii::{hash_date_of_birth, hash_email, hash_gender, Hashed};
use crate::core::{EventId, Kind, Subject};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn event(kind: &str) -> Event {
    let subject = Subject { kind: "order".into(), id: "1042".into() };
    let kind = Kind::parse(kind).unwrap();
    Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: now() - Duration::hours(1),
        received_at: now(),
        subject,
        value: Some(59.9),
        currency: None,
        items: vec![],
        identity: Identity { client_id: Some("1234567890.1700000000".into()), ..Identity::default() },
        consent: Consent {
            analytics: Some(ConsentState::Granted),
            ad_user_data: Some(ConsentState::Granted),
            ad_personalization: Some(ConsentState::Granted),
        },
        attributes: BTreeMap::new(),
        joined: vec![],
    }
}

fn with_email(mut e: Event) -> Event {
    e.identity.email = Some(hash_email("someone@example.com").unwrap());
    e
}

/// A test double of a platform's rules: every answer is configurable.
struct TestRules {
    window: Duration,
    /// The identity check passes when the event has a client id.
    needs_client_id: bool,
    dedupes_with_browser: bool,
    messages: Vec<String>,
    policy: ConsentPolicy,
}

impl Default for TestRules {
    fn default() -> Self {
        Self {
            window: Duration::hours(72),
            needs_client_id: true,
            dedupes_with_browser: false,
            messages: vec![],
            policy: ConsentPolicy {
                purpose: ConsentPurpose::Analytics,
                on_personal_data_denied: OnPersonalDataDenied::Strip,
                assume_granted: false,
            },
        }
    }
}

impl Rules for TestRules {
    fn window(&self) -> Duration {
        self.window
    }
    fn identity_ok(&self, event: &Event) -> bool {
        !self.needs_client_id || event.identity.client_id.is_some()
    }
    fn validate(&self, _event: &Event, _route: &Route, _strip_personal: bool) -> Vec<String> {
        self.messages.clone()
    }
    fn dedupes_with_browser(&self) -> bool {
        self.dedupes_with_browser
    }
    fn dedupes_resend(&self, _event: &Event, _route: &Route) -> bool {
        false
    }
    fn consent_policy(&self) -> &ConsentPolicy {
        &self.policy
    }
}

fn route(browser_tracked: bool) -> Route {
    Route { event: "purchase".into(), browser_tracked, ..Route::default() }
}

/// A planner routing `order_paid` to one destination `dest` with the given rules and route.
fn planner_with(rules: TestRules, route: Route) -> Planner {
    let mut catalog = BTreeMap::new();
    catalog.insert("order_paid".to_owned(), vec![("dest".to_owned(), route)]);
    let mut all: BTreeMap<String, Arc<dyn Rules>> = BTreeMap::new();
    all.insert("dest".into(), Arc::new(rules));
    Planner::new(catalog, all)
}

fn plan_single(rules: TestRules, route: Route, event: &Event) -> Planned {
    let plans = planner_with(rules, route).plan(event, now());
    assert_eq!(plans.len(), 1, "{plans:?}");
    plans.into_iter().next().unwrap()
}

fn assert_skipped(p: &Planned, why: &str) {
    assert_eq!(p.state, DeliveryState::Skipped, "{p:?}");
    assert_eq!(p.reason, Some(why), "{p:?}");
}

// ---- the happy path ----

#[test]
fn a_clean_event_is_pending_with_the_route() {
    let p = plan_single(TestRules::default(), route(false), &event("order_paid"));
    assert_eq!(p.destination, "dest");
    assert_eq!(p.route, route(false));
    assert_eq!(p.state, DeliveryState::Pending);
    assert_eq!(p.reason, None);
    assert!(p.messages.is_empty());
    assert!(!p.strip_personal);
}

#[test]
fn an_unrouted_kind_gets_an_empty_plan() {
    let planner = planner_with(TestRules::default(), route(false));
    assert!(planner.plan(&event("lead_created"), now()).is_empty());
}

#[test]
fn every_routed_destination_gets_its_own_plan() {
    let mut catalog = BTreeMap::new();
    catalog.insert("order_paid".to_owned(), vec![("a".to_owned(), route(false)), ("b".to_owned(), route(true))]);
    let mut rules: BTreeMap<String, Arc<dyn Rules>> = BTreeMap::new();
    rules.insert("a".into(), Arc::new(TestRules::default()));
    rules.insert("b".into(), Arc::new(TestRules::default()));
    let plans = Planner::new(catalog, rules).plan(&event("order_paid"), now());
    assert_eq!(plans.len(), 2);
    assert_eq!((plans[0].destination.as_str(), plans[0].state), ("a", DeliveryState::Pending));
    assert_eq!((plans[1].destination.as_str(), plans[1].state), ("b", DeliveryState::Skipped));
}

// ---- 1. consent ----

#[test]
fn analytics_denied_skips_with_consent_denied() {
    let mut e = event("order_paid");
    e.consent.analytics = Some(ConsentState::Denied);
    assert_skipped(&plan_single(TestRules::default(), route(false), &e), reason::CONSENT_DENIED);
}

#[test]
fn ad_user_data_purpose_checks_ad_user_data_not_analytics() {
    let rules = || TestRules {
        policy: ConsentPolicy {
            purpose: ConsentPurpose::AdUserData,
            on_personal_data_denied: OnPersonalDataDenied::Strip,
            assume_granted: false,
        },
        ..TestRules::default()
    };
    let mut e = event("order_paid");
    e.consent.analytics = Some(ConsentState::Denied);
    assert_eq!(plan_single(rules(), route(false), &e).state, DeliveryState::Pending);

    let mut e = event("order_paid");
    e.consent.ad_user_data = Some(ConsentState::Denied);
    assert_skipped(&plan_single(rules(), route(false), &e), reason::CONSENT_DENIED);
}

#[test]
fn missing_consent_is_denied_unless_assumed_granted() {
    let mut e = event("order_paid");
    e.consent = Consent::default();
    assert_skipped(&plan_single(TestRules::default(), route(false), &e), reason::CONSENT_DENIED);

    let assumed = TestRules {
        policy: ConsentPolicy {
            purpose: ConsentPurpose::Analytics,
            on_personal_data_denied: OnPersonalDataDenied::Skip,
            assume_granted: true,
        },
        ..TestRules::default()
    };
    let p = plan_single(assumed, route(false), &with_email(e));
    assert_eq!(p.state, DeliveryState::Pending, "{p:?}");
    assert!(!p.strip_personal);
}

#[test]
fn assume_granted_never_overrides_an_explicit_denial() {
    let rules = TestRules {
        policy: ConsentPolicy {
            purpose: ConsentPurpose::Analytics,
            on_personal_data_denied: OnPersonalDataDenied::Strip,
            assume_granted: true,
        },
        ..TestRules::default()
    };
    let mut e = event("order_paid");
    e.consent.analytics = Some(ConsentState::Denied);
    assert_skipped(&plan_single(rules, route(false), &e), reason::CONSENT_DENIED);
}

#[test]
fn ad_user_data_denied_with_personal_fields_strips_under_strip_policy() {
    let mut e = with_email(event("order_paid"));
    e.consent.ad_user_data = Some(ConsentState::Denied);
    let p = plan_single(TestRules::default(), route(false), &e);
    assert_eq!(p.state, DeliveryState::Pending, "{p:?}");
    assert!(p.strip_personal);
}

#[test]
fn ad_user_data_denied_with_personal_fields_skips_under_skip_policy() {
    let rules = TestRules {
        policy: ConsentPolicy {
            purpose: ConsentPurpose::Analytics,
            on_personal_data_denied: OnPersonalDataDenied::Skip,
            assume_granted: false,
        },
        ..TestRules::default()
    };
    let mut e = with_email(event("order_paid"));
    e.consent.ad_user_data = Some(ConsentState::Denied);
    assert_skipped(&plan_single(rules, route(false), &e), reason::CONSENT_DENIED);
}

#[test]
fn ad_user_data_denied_without_personal_fields_changes_nothing() {
    let rules = TestRules {
        policy: ConsentPolicy {
            purpose: ConsentPurpose::Analytics,
            on_personal_data_denied: OnPersonalDataDenied::Skip,
            assume_granted: false,
        },
        ..TestRules::default()
    };
    let mut e = event("order_paid");
    e.consent.ad_user_data = Some(ConsentState::Denied);
    let p = plan_single(rules, route(false), &e);
    assert_eq!(p.state, DeliveryState::Pending, "{p:?}");
    assert!(!p.strip_personal);
}

#[test]
fn every_personal_field_counts_as_personal() {
    let h = hash_email("someone@example.com").unwrap();
    assert!(!has_personal(&Identity { client_id: Some("c".into()), ..Identity::default() }));
    for set in [
        |i: &mut Identity, h: Hashed| i.email = Some(h),
        |i: &mut Identity, h: Hashed| i.phone = Some(h),
        |i: &mut Identity, h: Hashed| i.first_name = Some(h),
        |i: &mut Identity, h: Hashed| i.last_name = Some(h),
        |i: &mut Identity, h: Hashed| i.street = Some(h),
        |i: &mut Identity, h: Hashed| i.gender = Some(h),
        |i: &mut Identity, h: Hashed| i.date_of_birth = Some(h),
    ] {
        let mut i = Identity::default();
        set(&mut i, h.clone());
        assert!(has_personal(&i), "{i:?}");
    }
}

#[test]
fn strip_decision_is_passed_to_validation() {
    struct Recording(std::sync::Mutex<Vec<bool>>, ConsentPolicy);
    impl Rules for Recording {
        fn window(&self) -> Duration {
            Duration::hours(72)
        }
        fn identity_ok(&self, _: &Event) -> bool {
            true
        }
        fn validate(&self, _: &Event, _: &Route, strip_personal: bool) -> Vec<String> {
            self.0.lock().unwrap().push(strip_personal);
            vec![]
        }
        fn dedupes_with_browser(&self) -> bool {
            false
        }
        fn dedupes_resend(&self, _: &Event, _: &Route) -> bool {
            false
        }
        fn consent_policy(&self) -> &ConsentPolicy {
            &self.1
        }
    }
    let rec = Arc::new(Recording(Mutex::new(vec![]), TestRules::default().policy));
    let mut catalog = BTreeMap::new();
    catalog.insert("order_paid".to_owned(), vec![("dest".to_owned(), route(false))]);
    let mut rules: BTreeMap<String, Arc<dyn Rules>> = BTreeMap::new();
    rules.insert("dest".into(), rec.clone());
    let mut e = with_email(event("order_paid"));
    e.consent.ad_user_data = Some(ConsentState::Denied);
    Planner::new(catalog, rules).plan(&e, now());
    assert_eq!(*rec.0.lock().unwrap(), vec![true]);
}

// ---- 2. browser overlap ----

#[test]
fn browser_tracked_on_a_platform_that_does_not_dedupe_is_skipped() {
    assert_skipped(&plan_single(TestRules::default(), route(true), &event("order_paid")), reason::BROWSER_TRACKED);
}

#[test]
fn browser_tracked_on_a_deduping_platform_is_sent() {
    let rules = TestRules { dedupes_with_browser: true, ..TestRules::default() };
    let p = plan_single(rules, route(true), &event("order_paid"));
    assert_eq!(p.state, DeliveryState::Pending, "{p:?}");
}

// ---- 3. identity ----

#[test]
fn no_identity_is_skipped() {
    let mut e = event("order_paid");
    e.identity.client_id = None;
    assert_skipped(&plan_single(TestRules::default(), route(false), &e), reason::NO_IDENTITY);
}

// ---- 3b. waiting for identity that arrives after the event ----

/// `plan_single` with a 15-minute wait for identity, planned at `at`.
fn plan_waiting(rules: TestRules, event: &Event, at: DateTime<Utc>) -> Planned {
    let planner = planner_with(rules, route(false))
        .with_identity_waits([("dest".to_owned(), Duration::minutes(15))].into_iter().collect());
    planner.plan(event, at).remove(0)
}

fn anonymous() -> Event {
    let mut e = event("order_paid");
    e.identity.client_id = None;
    e
}

#[test]
fn without_identity_a_waiting_destination_plans_pending_awaiting_identity_until_receipt_plus_wait() {
    let p = plan_waiting(TestRules::default(), &anonymous(), now());
    assert_eq!((p.state, p.reason), (DeliveryState::Pending, Some(reason::AWAITING_IDENTITY)));
    assert_eq!(p.wait_until, Some(now() + Duration::minutes(15)));
    // Counted from receipt, not event time: the event occurred an hour before it was received.
    assert_eq!(anonymous().occurred_at, now() - Duration::hours(1));
}

#[test]
fn once_the_wait_is_over_no_identity_is_skipped() {
    let p = plan_waiting(TestRules::default(), &anonymous(), now() + Duration::minutes(15));
    assert_skipped(&p, reason::NO_IDENTITY);
    assert_eq!(p.wait_until, None);
}

#[test]
fn a_zero_wait_or_an_identified_event_does_not_wait() {
    let zero = planner_with(TestRules::default(), route(false))
        .with_identity_waits([("dest".to_owned(), Duration::zero())].into_iter().collect());
    assert_skipped(&zero.plan(&anonymous(), now()).remove(0), reason::NO_IDENTITY);
    let p = plan_waiting(TestRules::default(), &event("order_paid"), now());
    assert_eq!((p.state, p.reason, p.wait_until), (DeliveryState::Pending, None, None));
}

#[test]
fn waiting_keeps_explicit_denials_browser_overlap_and_the_window_final() {
    let mut denied = anonymous();
    denied.consent.analytics = Some(ConsentState::Denied);
    assert_skipped(&plan_waiting(TestRules::default(), &denied, now()), reason::CONSENT_DENIED);

    let planner = planner_with(TestRules::default(), route(true))
        .with_identity_waits([("dest".to_owned(), Duration::minutes(15))].into_iter().collect());
    assert_skipped(&planner.plan(&anonymous(), now()).remove(0), reason::BROWSER_TRACKED);

    let mut old = anonymous();
    old.occurred_at = now() - Duration::hours(73);
    assert_skipped(&plan_waiting(TestRules::default(), &old, now()), reason::OUTSIDE_WINDOW);
}

#[test]
fn unstated_consent_waits_with_the_identity_but_not_without_a_wait() {
    let mut e = anonymous();
    e.consent = Consent::default();
    let p = plan_waiting(TestRules::default(), &e, now());
    assert_eq!((p.state, p.reason), (DeliveryState::Pending, Some(reason::AWAITING_IDENTITY)));
    // Identified, consent unstated: nothing a capture is waited for, so denied as before.
    let mut identified = event("order_paid");
    identified.consent = Consent::default();
    assert_skipped(&plan_waiting(TestRules::default(), &identified, now()), reason::CONSENT_DENIED);
}

#[test]
fn waiting_is_not_validated_until_the_identity_is_there() {
    let rules = || TestRules { messages: vec!["client_id is required".into()], ..TestRules::default() };
    let p = plan_waiting(rules(), &anonymous(), now());
    assert_eq!((p.state, p.reason), (DeliveryState::Pending, Some(reason::AWAITING_IDENTITY)));
    let p = plan_waiting(rules(), &event("order_paid"), now());
    assert_eq!((p.state, p.reason), (DeliveryState::Rejected, Some(reason::INVALID)));
}

#[test]
fn replan_after_a_join_applies_every_rule_with_the_stored_route() {
    let planner = planner_with(TestRules::default(), route(false))
        .with_identity_waits([("dest".to_owned(), Duration::minutes(15))].into_iter().collect());
    let mut e = anonymous();
    e.consent = Consent::default();
    let bridge = Identity { client_id: Some("555.777".into()), ..Identity::default() };
    join(&mut e, &bridge, &Consent { analytics: Some(ConsentState::Granted), ..Consent::default() });
    let p = planner.replan(&e, "dest", &route(false), now() + Duration::seconds(2)).unwrap();
    assert_eq!((p.state, p.reason, p.wait_until), (DeliveryState::Pending, None, None));

    let mut denied = anonymous();
    denied.consent = Consent::default();
    join(&mut denied, &bridge, &Consent { analytics: Some(ConsentState::Denied), ..Consent::default() });
    let p = planner.replan(&denied, "dest", &route(false), now() + Duration::seconds(2)).unwrap();
    assert_skipped(&p, reason::CONSENT_DENIED);
    assert!(planner.replan(&e, "gone", &route(false), now()).is_none());
}

// ---- 4. window ----

#[test]
fn older_than_the_window_is_skipped_outside_window() {
    let mut e = event("order_paid");
    e.occurred_at = now() - Duration::hours(72) - Duration::seconds(1);
    assert_skipped(&plan_single(TestRules::default(), route(false), &e), reason::OUTSIDE_WINDOW);
}

#[test]
fn exactly_at_the_window_boundary_is_not_skipped() {
    let mut e = event("order_paid");
    e.occurred_at = now() - Duration::hours(72);
    assert_eq!(plan_single(TestRules::default(), route(false), &e).state, DeliveryState::Pending);
    assert!(!outside_window(&e, Duration::hours(72), now()));
    assert!(outside_window(&e, Duration::hours(72) - Duration::milliseconds(1), now()));
}

// ---- 5. validation ----

#[test]
fn validation_messages_reject_as_invalid_with_the_messages() {
    let msgs = vec!["events[0].params.currency: required".to_owned(), "name too long".to_owned()];
    let rules = TestRules { messages: msgs.clone(), ..TestRules::default() };
    let p = plan_single(rules, route(false), &event("order_paid"));
    assert_eq!(p.state, DeliveryState::Rejected);
    assert_eq!(p.reason, Some(reason::INVALID));
    assert_eq!(p.messages, msgs);
}

// ---- order of the checks ----

#[test]
fn consent_is_checked_before_everything_else() {
    let rules = TestRules { messages: vec!["bad".into()], ..TestRules::default() };
    let mut e = event("order_paid");
    e.consent.analytics = Some(ConsentState::Denied);
    e.identity.client_id = None;
    e.occurred_at = now() - Duration::days(30);
    assert_skipped(&plan_single(rules, route(true), &e), reason::CONSENT_DENIED);
}

#[test]
fn browser_overlap_comes_before_identity_window_and_validation() {
    let rules = TestRules { messages: vec!["bad".into()], ..TestRules::default() };
    let mut e = event("order_paid");
    e.identity.client_id = None;
    e.occurred_at = now() - Duration::days(30);
    assert_skipped(&plan_single(rules, route(true), &e), reason::BROWSER_TRACKED);
}

#[test]
fn identity_comes_before_window_and_validation() {
    let rules = TestRules { messages: vec!["bad".into()], ..TestRules::default() };
    let mut e = event("order_paid");
    e.identity.client_id = None;
    e.occurred_at = now() - Duration::days(30);
    assert_skipped(&plan_single(rules, route(false), &e), reason::NO_IDENTITY);
}

#[test]
fn window_comes_before_validation() {
    let rules = TestRules { messages: vec!["bad".into()], ..TestRules::default() };
    let mut e = event("order_paid");
    e.occurred_at = now() - Duration::days(30);
    let p = plan_single(rules, route(false), &e);
    assert_skipped(&p, reason::OUTSIDE_WINDOW);
    assert!(p.messages.is_empty());
}

// ---- join ----

fn bridge() -> (Identity, Consent) {
    let identity = Identity {
        client_id: Some("bridge-client".into()),
        session_id: Some("bridge-session".into()),
        gclid: Some("bridge-gclid".into()),
        email: Some(hash_email("bridge@example.com").unwrap()),
        ..Identity::default()
    };
    let consent = Consent {
        analytics: Some(ConsentState::Denied),
        ad_user_data: Some(ConsentState::Granted),
        ad_personalization: Some(ConsentState::Granted),
    };
    (identity, consent)
}

#[test]
fn join_fills_only_missing_fields_and_records_them() {
    let mut e = event("order_paid");
    e.identity = Identity { client_id: Some("event-client".into()), ..Identity::default() };
    e.consent = Consent { analytics: Some(ConsentState::Granted), ..Consent::default() };
    let (identity, consent) = bridge();

    join(&mut e, &identity, &consent);

    // What the event carried wins.
    assert_eq!(e.identity.client_id.as_deref(), Some("event-client"));
    assert_eq!(e.consent.analytics, Some(ConsentState::Granted));
    // What it lacked is filled.
    assert_eq!(e.identity.session_id.as_deref(), Some("bridge-session"));
    assert_eq!(e.identity.gclid.as_deref(), Some("bridge-gclid"));
    assert_eq!(e.identity.email, identity.email);
    assert_eq!(e.consent.ad_user_data, Some(ConsentState::Granted));
    assert_eq!(e.consent.ad_personalization, Some(ConsentState::Granted));
    // Fields neither side has stay empty.
    assert_eq!(e.identity.fbp, None);

    let mut joined = e.joined.clone();
    joined.sort();
    assert_eq!(
        joined,
        vec![
            "consent.ad_personalization",
            "consent.ad_user_data",
            "identity.email",
            "identity.gclid",
            "identity.session_id",
        ]
    );
}

#[test]
fn join_fills_gender_and_date_of_birth_from_the_bridge() {
    let mut e = event("order_paid");
    let today = now().date_naive();
    let bridge = Identity {
        gender: Some(hash_gender("Female").unwrap()),
        date_of_birth: Some(hash_date_of_birth("1990-01-31", today).unwrap()),
        ..Identity::default()
    };
    join(&mut e, &bridge, &Consent::default());
    assert_eq!(e.identity.gender, bridge.gender);
    assert_eq!(e.identity.date_of_birth, bridge.date_of_birth);
    assert_eq!(e.joined, vec!["identity.gender", "identity.date_of_birth"]);
}

#[test]
fn denied_ad_user_data_strips_gender_or_date_of_birth_alone() {
    for set in [
        |i: &mut Identity| i.gender = Some(hash_gender("m").unwrap()),
        |i: &mut Identity| i.date_of_birth = Some(hash_date_of_birth("19900131", now().date_naive()).unwrap()),
    ] {
        let mut e = event("order_paid");
        e.consent.ad_user_data = Some(ConsentState::Denied);
        assert!(!plan_single(TestRules::default(), route(false), &e).strip_personal, "nothing personal yet");
        set(&mut e.identity);
        let p = plan_single(TestRules::default(), route(false), &e);
        assert_eq!(p.state, DeliveryState::Pending, "{p:?}");
        assert!(p.strip_personal, "{:?}", e.identity);
    }
}

#[test]
fn join_with_nothing_missing_changes_nothing() {
    let mut e = event("order_paid");
    let (mut identity, consent) = bridge();
    e.identity = identity.clone();
    identity.client_id = Some("other".into());
    let before = e.clone();
    join(&mut e, &identity, &consent);
    assert_eq!(e, before);
    assert!(e.joined.is_empty());
}

#[test]
fn join_from_an_empty_bridge_records_nothing() {
    let mut e = event("order_paid");
    e.identity = Identity::default();
    e.consent = Consent::default();
    let before = e.clone();
    join(&mut e, &Identity::default(), &Consent::default());
    assert_eq!(e, before);
}

#[test]
fn joined_identity_feeds_planning() {
    let mut e = event("order_paid");
    e.identity = Identity::default();
    e.consent = Consent::default();
    let planner = planner_with(TestRules::default(), route(false));
    assert_skipped(&planner.plan(&e, now())[0], reason::CONSENT_DENIED);

    let (identity, mut consent) = bridge();
    consent.analytics = Some(ConsentState::Granted);
    join(&mut e, &identity, &consent);
    assert_eq!(planner.plan(&e, now())[0].state, DeliveryState::Pending);
}

#[test]
fn unstated_ad_user_data_strips_personal_fields_unless_assumed_granted() {
    let mut e = with_email(event("order_paid"));
    e.consent.ad_user_data = None;
    assert!(plan_single(TestRules::default(), route(false), &e).strip_personal);

    let assumed = TestRules {
        policy: ConsentPolicy {
            purpose: ConsentPurpose::Analytics,
            on_personal_data_denied: OnPersonalDataDenied::Strip,
            assume_granted: true,
        },
        ..TestRules::default()
    };
    assert!(!plan_single(assumed, route(false), &e).strip_personal);
}

// ---- the roll-out's sample ----

fn sampled_planner(sample: Sample) -> Planner {
    let mut catalog = BTreeMap::new();
    catalog.insert("order_paid".to_owned(), vec![("dest".to_owned(), route(false))]);
    catalog.insert("refund_completed".to_owned(), vec![("dest".to_owned(), route(false))]);
    let mut all: BTreeMap<String, Arc<dyn Rules>> = BTreeMap::new();
    all.insert("dest".into(), Arc::new(TestRules::default()));
    Planner::new(catalog, all).with_samples(BTreeMap::from([("dest".to_owned(), sample)]))
}

fn for_subject(kind: &str, id: &str) -> Event {
    let mut e = event(kind);
    e.subject = Subject { kind: "order".into(), id: id.into() };
    e.event_id = EventId::derive(&e.subject, &e.kind);
    e
}

#[test]
fn a_sample_of_kinds_holds_back_the_other_kinds() {
    let planner = sampled_planner(Sample { kinds: Some(vec!["order_paid".into()]), share: None });
    let paid = planner.plan(&event("order_paid"), now());
    assert_eq!(paid[0].state, DeliveryState::Pending, "{paid:?}");
    let refund = planner.plan(&event("refund_completed"), now());
    assert_skipped(&refund[0], reason::NOT_SAMPLED);
    assert!(refund[0].messages[0].contains("kinds = [order_paid]"), "{:?}", refund[0].messages);
    assert_eq!(planner.sampled_out("dest", &event("refund_completed")), Some(refund[0].messages[0].clone()));
    assert_eq!(planner.sampled_out("other", &event("refund_completed")), None);
}

#[test]
fn a_share_sends_every_event_of_a_subject_the_same_way() {
    let planner = sampled_planner(Sample { kinds: None, share: Some(0.3) });
    let (mut admitted, mut held) = (0, 0);
    for id in 0..200 {
        let id = id.to_string();
        let paid = &planner.plan(&for_subject("order_paid", &id), now())[0];
        let refund = &planner.plan(&for_subject("refund_completed", &id), now())[0];
        assert_eq!(paid.state, refund.state, "subject {id}: {paid:?} / {refund:?}");
        assert_eq!(paid.state == DeliveryState::Pending, subject_in_share("order", &id, 0.3));
        match paid.state {
            DeliveryState::Pending => admitted += 1,
            _ => {
                assert_skipped(paid, reason::NOT_SAMPLED);
                held += 1;
            }
        }
    }
    assert!(admitted > 20 && held > 80, "admitted {admitted}, held {held}");
}

#[test]
fn a_sample_holds_back_only_what_would_be_sent() {
    let planner = sampled_planner(Sample { kinds: Some(vec!["refund_completed".into()]), share: None });
    // Consent denied stays consent_denied: a replay of not_sampled must never skip consent.
    let mut denied = event("order_paid");
    denied.consent.analytics = Some(ConsentState::Denied);
    assert_skipped(&planner.plan(&denied, now())[0], reason::CONSENT_DENIED);
    let mut old = event("order_paid");
    old.occurred_at = now() - Duration::hours(100);
    assert_skipped(&planner.plan(&old, now())[0], reason::OUTSIDE_WINDOW);
    // No limit set: everything passes.
    let open = sampled_planner(Sample::default());
    assert_eq!(open.plan(&event("order_paid"), now())[0].state, DeliveryState::Pending);
}
