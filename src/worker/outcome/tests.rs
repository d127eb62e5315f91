use std::collections::BTreeMap;
use std::time::Duration;

use chrono::TimeZone;
use proptest::prelude::*;

use super::*;
use crate::core::{Consent, Event, EventId, Identity, Kind, RetryAfter, Route, Subject};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn policy() -> RetryPolicy {
    RetryPolicy { max_attempts: 5, max_age_secs: 3600, base_delay_ms: 1_000, max_delay_ms: 60_000 }
}

/// A claimed delivery with `attempts` made before, planned `age` ago.
fn claimed(attempts: u32, age: ChronoDuration) -> Claimed {
    let subject = Subject { kind: "order".into(), id: "1042".into() };
    let kind = Kind::parse("order_paid").unwrap();
    Claimed {
        delivery_id: 7,
        event: Event {
            event_id: EventId::derive(&subject, &kind),
            kind,
            source: "api".into(),
            occurred_at: now() - ChronoDuration::hours(1),
            received_at: now() - age,
            subject,
            value: None,
            currency: None,
            items: vec![],
            identity: Identity::default(),
            consent: Consent::default(),
            attributes: BTreeMap::new(),
            joined: vec![],
        },
        route: Route { event: "purchase".into(), browser_tracked: false, ..Route::default() },
        attempts,
        strip_personal: false,
        created_at: now() - age,
        forced: false,
    }
}

fn retry(retry_after: Option<Duration>) -> Outcome {
    Outcome::retry("http 503", retry_after)
}

// ---- ended outcomes ----

#[test]
fn delivered_and_accepted() {
    let s = settle(
        &Outcome::Delivered { accepted: true, detail: Some("validated".into()) },
        &claimed(0, ChronoDuration::zero()),
        &policy(),
        now(),
        0.5,
    );
    assert_eq!(s.state, DeliveryState::Delivered);
    assert_eq!(s.reason.as_deref(), Some("accepted"));
    assert_eq!(s.next_attempt_at, None);
    assert_eq!(s.outcome.as_str(), "delivered");
    assert_eq!(s.detail.as_deref(), Some("validated"));
    assert!(s.messages.is_empty());
}

#[test]
fn delivered_but_only_sent() {
    let s = settle(
        &Outcome::Delivered { accepted: false, detail: None },
        &claimed(3, ChronoDuration::minutes(5)),
        &policy(),
        now(),
        0.5,
    );
    assert_eq!(s.state, DeliveryState::Delivered);
    assert_eq!(s.reason.as_deref(), Some(reason::SENT));
    assert_eq!(s.next_attempt_at, None);
}

#[test]
fn delivered_on_the_last_allowed_attempt_is_still_delivered() {
    let s = settle(
        &Outcome::Delivered { accepted: true, detail: None },
        &claimed(policy().max_attempts - 1, ChronoDuration::hours(2)),
        &policy(),
        now(),
        0.5,
    );
    assert_eq!(s.state, DeliveryState::Delivered);
}

#[test]
fn rejected_keeps_reason_and_messages() {
    let messages = vec!["events[0].params.currency: VALUE_REQUIRED".to_owned(), "second".to_owned()];
    let s = settle(
        &Outcome::Rejected { reason: reason::PLATFORM_REJECTED.into(), messages: messages.clone() },
        &claimed(1, ChronoDuration::minutes(1)),
        &policy(),
        now(),
        0.5,
    );
    assert_eq!(s.state, DeliveryState::Rejected);
    assert_eq!(s.reason.as_deref(), Some(reason::PLATFORM_REJECTED));
    assert_eq!(s.messages, messages);
    assert_eq!(s.detail.as_deref(), Some(messages[0].as_str()));
    assert_eq!(s.next_attempt_at, None);
    assert_eq!(s.outcome.as_str(), "rejected");
}

#[test]
fn skipped_on_purpose_ends_with_its_code() {
    let outcome = Outcome::Skipped { reason: reason::ALREADY_RESTATED, detail: "already 14.80".into() };
    let s = settle(&outcome, &claimed(2, ChronoDuration::minutes(1)), &policy(), now(), 0.5);
    assert_eq!(s.state, DeliveryState::Skipped);
    assert_eq!(s.reason.as_deref(), Some(reason::ALREADY_RESTATED));
    assert_eq!(s.next_attempt_at, None);
    assert_eq!(s.outcome.as_str(), "skipped");
}

// ---- halt: the destination stops, the delivery waits ----

#[test]
fn a_halt_waits_like_a_retry_and_says_halt_in_the_ledger() {
    let s = settle(&Outcome::halt("token refused"), &claimed(0, ChronoDuration::zero()), &policy(), now(), 0.5);
    assert_eq!(s.state, DeliveryState::Pending);
    assert!(s.next_attempt_at.is_some_and(|t| t > now()));
    assert_eq!(s.outcome.as_str(), "retry");
    assert_eq!(s.detail.as_deref(), Some("halt: token refused"));

    let p = policy();
    let s =
        settle(&Outcome::halt("token refused"), &claimed(p.max_attempts - 1, ChronoDuration::zero()), &p, now(), 0.5);
    assert_eq!((s.state, s.reason.as_deref()), (DeliveryState::Dead, Some(reason::ATTEMPTS_EXHAUSTED)));
    assert_eq!(s.messages, ["last error: halt: token refused"]);
}

#[test]
fn a_slow_down_is_a_floor_like_retry_after() {
    let wait = Duration::from_secs(90);
    let outcome = Outcome::Retry { reason: "slow down".into(), after: RetryAfter::SlowDown(wait) };
    let s = settle(&outcome, &claimed(0, ChronoDuration::zero()), &policy(), now(), 0.0);
    assert_eq!(s.next_attempt_at, Some(now() + ChronoDuration::seconds(90)));
}

// ---- retry ----

#[test]
fn retry_is_pending_with_a_next_attempt_within_the_backoff_ceiling() {
    let p = policy();
    // After attempt n (1-based) the wait is at most min(max, base * 2^(n-1)).
    for (attempts_before, ceiling_ms) in [(0u32, 1_000i64), (1, 2_000), (2, 4_000), (3, 8_000)] {
        for jitter in [0.0, 0.25, 0.999_999] {
            let s = settle(&retry(None), &claimed(attempts_before, ChronoDuration::zero()), &p, now(), jitter);
            assert_eq!(s.state, DeliveryState::Pending, "{s:?}");
            assert_eq!(s.reason, None);
            assert_eq!(s.outcome.as_str(), "retry");
            assert_eq!(s.detail.as_deref(), Some("http 503"));
            let wait = s.next_attempt_at.expect("pending needs a next attempt") - now();
            assert!(wait >= ChronoDuration::zero(), "{wait:?}");
            assert!(wait < ChronoDuration::milliseconds(ceiling_ms), "{attempts_before}: {wait:?}");
        }
    }
}

#[test]
fn retry_wait_is_the_policy_delay() {
    let p = policy();
    let s = settle(&retry(None), &claimed(2, ChronoDuration::zero()), &p, now(), 0.5);
    // Third attempt failed: ceiling 4 s, half of it.
    assert_eq!(s.next_attempt_at, Some(now() + ChronoDuration::seconds(2)));
}

#[test]
fn retry_after_is_a_floor() {
    let p = policy();
    let s = settle(&retry(Some(Duration::from_secs(120))), &claimed(0, ChronoDuration::zero()), &p, now(), 0.9);
    assert_eq!(s.next_attempt_at, Some(now() + ChronoDuration::seconds(120)));
    // A Retry-After shorter than the backoff does not shorten it.
    let s = settle(&retry(Some(Duration::from_millis(1))), &claimed(3, ChronoDuration::zero()), &p, now(), 0.5);
    assert_eq!(s.next_attempt_at, Some(now() + ChronoDuration::seconds(4)));
}

#[test]
fn max_attempts_counts_every_attempt() {
    let p = policy(); // 5 attempts in all
    for before in 0..p.max_attempts - 1 {
        let s = settle(&retry(None), &claimed(before, ChronoDuration::zero()), &p, now(), 0.5);
        assert_eq!(s.state, DeliveryState::Pending, "attempt {} of 5 failed: {s:?}", before + 1);
    }
    let s = settle(&retry(None), &claimed(p.max_attempts - 1, ChronoDuration::zero()), &p, now(), 0.5);
    assert_eq!(s.state, DeliveryState::Dead);
    assert_eq!(s.reason.as_deref(), Some(reason::ATTEMPTS_EXHAUSTED));
    assert_eq!(s.next_attempt_at, None);
    assert_eq!(s.messages, vec!["last error: http 503".to_owned()]);
    assert_eq!(s.detail.as_deref(), Some("http 503"));
}

#[test]
fn a_single_attempt_policy_never_retries() {
    let p = RetryPolicy { max_attempts: 1, ..policy() };
    let s = settle(&retry(None), &claimed(0, ChronoDuration::zero()), &p, now(), 0.0);
    assert_eq!(s.state, DeliveryState::Dead);
    assert_eq!(s.reason.as_deref(), Some(reason::ATTEMPTS_EXHAUSTED));
}

#[test]
fn age_exhausted_when_the_next_attempt_would_be_too_late() {
    let p = policy(); // one hour
    let s = settle(&retry(None), &claimed(0, ChronoDuration::minutes(59)), &p, now(), 0.5);
    assert_eq!(s.state, DeliveryState::Pending, "{s:?}");

    // 3599.9 s old, the next attempt 0.5 s away: past the hour.
    let s = settle(&retry(None), &claimed(0, ChronoDuration::milliseconds(3_599_900)), &p, now(), 0.5);
    assert_eq!(s.state, DeliveryState::Dead);
    assert_eq!(s.reason.as_deref(), Some(reason::AGE_EXHAUSTED));
    assert_eq!(s.next_attempt_at, None);
}

#[test]
fn age_limit_is_inclusive() {
    let p = policy();
    // Next attempt lands exactly at created_at + max_age: still allowed.
    let s = settle(&retry(None), &claimed(0, ChronoDuration::milliseconds(3_599_500)), &p, now(), 0.5);
    assert_eq!(s.state, DeliveryState::Pending, "{s:?}");
    assert_eq!(s.next_attempt_at, Some(now() + ChronoDuration::milliseconds(500)));
}

#[test]
fn a_retry_after_past_the_age_limit_ends_the_delivery() {
    let s =
        settle(&retry(Some(Duration::from_secs(2 * 3600))), &claimed(0, ChronoDuration::zero()), &policy(), now(), 0.0);
    assert_eq!(s.state, DeliveryState::Dead);
    assert_eq!(s.reason.as_deref(), Some(reason::AGE_EXHAUSTED));
}

#[test]
fn a_huge_max_age_means_practically_forever() {
    for max_age_secs in [u64::MAX, 10u64.pow(17)] {
        let p = RetryPolicy { max_age_secs, ..policy() };
        let s = settle(&retry(None), &claimed(0, ChronoDuration::hours(1)), &p, now(), 0.5);
        assert_eq!(s.state, DeliveryState::Pending, "max_age_secs = {max_age_secs}: {s:?}");
    }
}

#[test]
fn attempts_are_checked_before_age() {
    let p = policy();
    let s = settle(&retry(None), &claimed(p.max_attempts - 1, ChronoDuration::hours(5)), &p, now(), 0.5);
    assert_eq!(s.reason.as_deref(), Some(reason::ATTEMPTS_EXHAUSTED));
}

// ---- the invariant of G6 ----

fn any_outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        (any::<bool>(), proptest::option::of("[a-z ]{0,10}"))
            .prop_map(|(accepted, detail)| Outcome::Delivered { accepted, detail }),
        ("[a-z0-9 ]{1,10}", proptest::option::of(0u64..=86_400_000))
            .prop_map(|(reason, ms)| Outcome::retry(reason, ms.map(Duration::from_millis))),
        "[a-z ]{1,10}".prop_map(Outcome::halt),
        ("[a-z_]{1,10}", proptest::collection::vec("[a-z ]{0,10}", 0..3))
            .prop_map(|(reason, messages)| Outcome::Rejected { reason, messages }),
        "[a-z ]{0,10}".prop_map(|detail| Outcome::Skipped { reason: reason::ALREADY_RESTATED, detail }),
    ]
}

fn any_policy() -> impl Strategy<Value = RetryPolicy> {
    (1u32..30, 0u64..=30 * 86_400, 0u64..=60_000, 0u64..=3_600_000).prop_map(|(max_attempts, age, base, extra)| {
        RetryPolicy { max_attempts, max_age_secs: age, base_delay_ms: base, max_delay_ms: base + extra }
    })
}

proptest! {
    #[test]
    fn settled_is_pending_with_a_time_or_ended_without_one(
        outcome in any_outcome(),
        policy in any_policy(),
        attempts in 0u32..40,
        age_secs in 0i64..=40 * 86_400,
        jitter in 0.0f64..1.0,
    ) {
        let c = claimed(attempts, ChronoDuration::seconds(age_secs));
        let s = settle(&outcome, &c, &policy, now(), jitter);
        if s.state.is_ended() {
            prop_assert!(s.next_attempt_at.is_none(), "{:?}", s);
            prop_assert!(s.reason.is_some(), "an ended state needs a reason: {:?}", s);
        } else {
            prop_assert_eq!(s.state, DeliveryState::Pending);
            let next = s.next_attempt_at;
            prop_assert!(next.is_some(), "{:?}", s);
            let next = next.unwrap();
            prop_assert!(next >= now());
            // Never scheduled past the age limit, never beyond the attempt budget.
            prop_assert!(next - c.created_at <= ChronoDuration::seconds(policy.max_age_secs as i64));
            prop_assert!(attempts + 1 < policy.max_attempts);
        }
    }

    #[test]
    fn retry_waits_at_least_retry_after_and_at_most_the_larger_bound(
        attempts in 0u32..20,
        retry_after_ms in proptest::option::of(0u64..=600_000),
        jitter in 0.0f64..1.0,
    ) {
        let p = RetryPolicy { max_attempts: 100, max_age_secs: 86_400, ..policy() };
        let s = settle(&retry(retry_after_ms.map(Duration::from_millis)), &claimed(attempts, ChronoDuration::zero()), &p, now(), jitter);
        let wait = (s.next_attempt_at.unwrap() - now()).num_milliseconds();
        let floor = retry_after_ms.unwrap_or(0) as i64;
        prop_assert!(wait >= floor);
        prop_assert!(wait <= floor.max(p.max_delay_ms as i64));
    }
}
