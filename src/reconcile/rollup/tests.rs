//! Day rollups equal a scan of the ledger through every change a day's figures can undergo —
//! new events (one for an old, cached day), an identity joined after the fact, deliveries ending
//! delivered/rejected/dead/in doubt or skipped at send, a replay, a follow-up confirmation, a
//! settlement, a prune — read before and after each refresh, on SQLite and on PostgreSQL; and a
//! refresh recomputes only the days something changed in.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::{refresh, HORIZON_DAYS};
use crate::core::plan::{ConsentPolicy, ConsentPurpose, OnPersonalDataDenied, Planner, Rules};
use crate::core::{
    AttemptOutcome, Consent, ConsentState, Currency, DeliveryState, Event, EventId, FollowUp, Identity,
    IdentityCapture, Kind, RequestRecord, Route, Subject,
};
use crate::reconcile::coverage::{coverage, coverage_scan, CoverageQuery, GroupBy};
use crate::reconcile::late::{late_arrivals, late_scan, LateQuery};
use crate::store::sqlite::{SqliteStore, Synchronous};
use crate::store::{BatchRecord, DeliveryUpdate, Intake, ReplaySelector, SettledAs, Settlement, Store};

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

/// Needs a client id; takes events up to the window (hours) old.
struct NeedsClient(ConsentPolicy, i64);

impl Rules for NeedsClient {
    fn window(&self) -> Duration {
        Duration::hours(self.1)
    }
    fn identity_ok(&self, event: &Event) -> bool {
        event.identity.client_id.is_some()
    }
    fn validate(&self, _: &Event, _: &Route, _: bool) -> Vec<String> {
        vec![]
    }
    fn dedupes_with_browser(&self) -> bool {
        false
    }
    fn dedupes_resend(&self, _: &Event, _: &Route) -> bool {
        false
    }
    fn consent_policy(&self) -> &ConsentPolicy {
        &self.0
    }
}

/// `order_paid` → ga4 (72 h window, waits 15 min for a late identity) and ads (30 days);
/// `refund_completed` → nowhere.
fn planner() -> Arc<Planner> {
    let route = Route { event: "purchase".into(), ..Route::default() };
    let catalog =
        BTreeMap::from([("order_paid".to_owned(), vec![("ga4".to_owned(), route.clone()), ("ads".to_owned(), route)])]);
    let policy = || ConsentPolicy {
        purpose: ConsentPurpose::Analytics,
        on_personal_data_denied: OnPersonalDataDenied::Strip,
        assume_granted: true,
    };
    let rules: BTreeMap<String, Arc<dyn Rules>> = BTreeMap::from([
        ("ga4".to_owned(), Arc::new(NeedsClient(policy(), 72)) as _),
        ("ads".to_owned(), Arc::new(NeedsClient(policy(), 720)) as _),
    ]);
    let waits = BTreeMap::from([("ga4".to_owned(), Duration::minutes(15))]);
    Arc::new(Planner::new(catalog, rules).with_identity_waits(waits))
}

fn event(id: &str, kind: &str, occurred: DateTime<Utc>, received: DateTime<Utc>, client: bool) -> Event {
    let subject = Subject { kind: "order".into(), id: id.into() };
    let kind = Kind::parse(kind).unwrap();
    Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: occurred,
        received_at: received,
        subject,
        value: Some(10.25),
        currency: Some(Currency::parse("EUR").unwrap()),
        items: vec![],
        identity: Identity { client_id: client.then(|| format!("c.{id}")), ..Identity::default() },
        consent: Consent { analytics: Some(ConsentState::Granted), ..Consent::default() },
        attributes: BTreeMap::new(),
        joined: vec![],
    }
}

/// Coverage (every grouping) and late arrivals (with and without a kind filter and
/// `changed_since`) from the rollups equal a plain scan, for whole and partial days.
async fn same_as_scan(store: &dyn Store, step: &str) {
    let windows = [(at(1, 0), at(21, 0)), (at(12, 6), at(18, 18)), (at(13, 0), at(14, 0)), (at(15, 0), at(20, 13))];
    for (since, until) in windows {
        for by in [GroupBy::Kind, GroupBy::Destination, GroupBy::Day] {
            let q = CoverageQuery { since, until, by };
            let (rolled, scanned) = (coverage(store, &q).await.unwrap(), coverage_scan(store, &q).await.unwrap());
            assert_eq!(rolled, scanned, "{step}: coverage by {by:?} over {since} .. {until}");
        }
        for kinds in [vec![], vec!["order_paid".to_owned()]] {
            for changed_since in [None, Some(at(20, 12) + Duration::minutes(30))] {
                let q = LateQuery { since, until, changed_since, kinds: kinds.clone() };
                let (rolled, scanned) = (late_arrivals(store, &q).await.unwrap(), late_scan(store, &q).await.unwrap());
                assert_eq!(
                    rolled, scanned,
                    "{step}: late arrivals {kinds:?} {changed_since:?} over {since} .. {until}"
                );
            }
        }
    }
}

fn update(id: i64, state: DeliveryState, reason: Option<&str>, outcome: AttemptOutcome) -> DeliveryUpdate {
    DeliveryUpdate {
        delivery_id: id,
        state,
        reason: reason.map(str::to_owned),
        messages: vec![],
        next_attempt_at: (state == DeliveryState::Pending).then(|| at(25, 0)),
        attempted: outcome != AttemptOutcome::Skipped,
        outcome,
        detail: None,
        payload_sha256: None,
        request: (outcome == AttemptOutcome::Delivered).then_some(0),
        forced: false,
    }
}

fn request(now: DateTime<Utc>) -> RequestRecord {
    RequestRecord {
        endpoint: "collect",
        sent_at: now,
        duration: std::time::Duration::from_millis(5),
        status: Some(200),
        error: None,
        response_excerpt: String::new(),
        body_sha256: "0".repeat(64),
        body: None,
    }
}

async fn drive(store: &dyn Store) {
    let p = planner();
    let t1 = at(20, 12);
    // Days 12 to 19, three orders (one without a client id) and a refund each, all received at t1.
    let mut events = Vec::new();
    for d in 12..20u32 {
        for (i, client) in [(0, true), (1, true), (2, false)] {
            events.push(event(&format!("o{d}-{i}"), "order_paid", at(d, 3 + 7 * i), t1, client));
        }
        events.push(event(&format!("r{d}"), "refund_completed", at(d, 23), t1, false));
    }
    events.push(event("today", "order_paid", at(20, 9), t1, true));
    store.intake(Intake::of_events(t1, events), p.clone()).await.unwrap();
    same_as_scan(store, "nothing cached").await;

    let r1 = t1 + Duration::minutes(10);
    assert_eq!(refresh(store, r1).await.unwrap(), HORIZON_DAYS as usize, "the first refresh computes the horizon");
    assert_eq!(refresh(store, r1 + Duration::minutes(1)).await.unwrap(), 0, "nothing changed: nothing recomputed");
    same_as_scan(store, "all cached").await;
    let s = super::sources(store, at(12, 6), at(18, 18)).await.unwrap();
    let days: Vec<u32> = s.cached.iter().map(|(d, _)| chrono::Datelike::day(d)).collect();
    assert_eq!(days, [13, 14, 15, 16, 17], "whole days come from the cache");
    assert_eq!(s.live, [(at(12, 6), at(13, 0)), (at(18, 0), at(18, 18))], "partial days are read live");

    // The worker, an hour later: ads deliveries of days 12–15 end every way there is, those of
    // days 16–17 are left sending, the rest wait for a retry; ga4 delivers what it has (days 18
    // and 19; older orders were skipped outside its window) and skips the order that waited for
    // an identity in vain.
    let t2 = t1 + Duration::hours(1);
    let lease = std::time::Duration::from_secs(60);
    let ads = store.claim("ads", 100, lease, "w1", t2).await.unwrap();
    let mut updates = Vec::new();
    for c in ads.iter().filter(|c| c.event.occurred_at < at(16, 0)) {
        updates.push(match updates.len() % 5 {
            0 | 1 => update(c.delivery_id, DeliveryState::Delivered, None, AttemptOutcome::Delivered),
            2 => update(c.delivery_id, DeliveryState::Rejected, Some("invalid"), AttemptOutcome::Rejected),
            3 => update(c.delivery_id, DeliveryState::Dead, Some("max_attempts"), AttemptOutcome::Retry),
            _ => update(c.delivery_id, DeliveryState::Skipped, Some("validate_only"), AttemptOutcome::Skipped),
        });
    }
    for c in ads.iter().filter(|c| c.event.occurred_at >= at(18, 0)) {
        updates.push(update(c.delivery_id, DeliveryState::Pending, Some("http_500"), AttemptOutcome::Retry));
    }
    let rec = BatchRecord {
        destination: "ads".into(),
        owner: "w1".into(),
        requests: vec![request(t2)],
        updates,
        follow_ups: vec![],
    };
    store.record(rec, t2).await.unwrap();
    let sending: Vec<i64> = ads
        .iter()
        .filter(|c| c.event.occurred_at >= at(16, 0) && c.event.occurred_at < at(18, 0))
        .map(|c| c.delivery_id)
        .collect();
    store.mark_sending(&sending, "w1", t2).await.unwrap();
    let ga4 = store.claim("ga4", 100, lease, "w2", t2).await.unwrap();
    let updates = ga4
        .iter()
        .map(|c| match c.event.identity.client_id {
            Some(_) => update(c.delivery_id, DeliveryState::Delivered, Some("received"), AttemptOutcome::Delivered),
            None => update(c.delivery_id, DeliveryState::Skipped, Some("no_identity"), AttemptOutcome::Skipped),
        })
        .collect();
    let follow_ups = vec![(0, "req-1".into(), t2 + Duration::hours(1))];
    let rec =
        BatchRecord { destination: "ga4".into(), owner: "w2".into(), requests: vec![request(t2)], updates, follow_ups };
    store.record(rec, t2).await.unwrap();
    same_as_scan(store, "deliveries ended").await;
    let r2 = t2 + Duration::minutes(10);
    assert_eq!(refresh(store, r2).await.unwrap(), 7, "days 12–15 (ads) and 17–19 (ga4) changed");
    same_as_scan(store, "deliveries ended, refreshed").await;

    // Leases run out: the ads sends of days 16–17 are in doubt.
    let t3 = t2 + Duration::hours(1);
    let recovered = store.recover(p.clone(), true, t3).await.unwrap();
    assert_eq!(recovered.in_doubt, sending.len() as u64);
    same_as_scan(store, "in doubt").await;
    assert_eq!(refresh(store, t3 + Duration::minutes(10)).await.unwrap(), 2, "days 16–17 changed");

    // A replay of the dead ones; a follow-up confirms the delivered; a person settles one in doubt
    // as delivered, the other as not delivered.
    let t4 = t3 + Duration::hours(1);
    let selector = ReplaySelector { state: Some(DeliveryState::Dead), ..ReplaySelector::default() };
    assert!(!store.replay(selector, false, t4).await.unwrap().replayed.is_empty());
    same_as_scan(store, "replayed").await;
    refresh(store, t4 + Duration::minutes(10)).await.unwrap();
    let t5 = t4 + Duration::hours(1);
    let due = store.due_follow_ups("ga4", t5, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    store.record_follow_up(due[0].request_id, FollowUp::Accepted, None, t5).await.unwrap();
    same_as_scan(store, "confirmed").await;
    for (id, settled_as) in sending.iter().zip([SettledAs::Delivered, SettledAs::NotDelivered]) {
        let s = Settlement { delivery_id: *id, settled_as, by: "test".into(), note: None };
        store.settle(s, t5).await.unwrap();
    }
    same_as_scan(store, "settled").await;
    refresh(store, t5 + Duration::minutes(10)).await.unwrap();
    same_as_scan(store, "confirmed and settled, refreshed").await;

    // One event for day 13, cached long ago, arrives; then an order of day 19 that waits for an
    // identity, and the identity.
    let t6 = t5 + Duration::hours(1);
    let old = event("late-13", "order_paid", at(13, 8), t6, true);
    store.intake(Intake::of_events(t6, vec![old]), p.clone()).await.unwrap();
    same_as_scan(store, "a late event").await;
    let s = super::sources(store, at(12, 0), at(15, 0)).await.unwrap();
    assert_eq!(s.live, [(at(13, 0), at(14, 0))], "the day that changed is read live until the next refresh");
    assert_eq!(refresh(store, t6 + Duration::minutes(10)).await.unwrap(), 1, "only day 13 changed");
    let t7 = t6 + Duration::hours(1);
    let waiting = event("w19", "order_paid", at(19, 5), t7, false);
    store.intake(Intake::of_events(t7, vec![waiting]), p.clone()).await.unwrap();
    // Cached after the margin has passed: only the rewrite of the event can make day 19 stale.
    refresh(store, t7 + Duration::minutes(11)).await.unwrap();
    let capture = IdentityCapture {
        subject: Subject { kind: "order".into(), id: "w19".into() },
        captured_at: t7 + Duration::minutes(12),
        identity: Identity { client_id: Some("c.w19".into()), session_id: Some("s.w19".into()), ..Identity::default() },
        consent: Consent::default(),
        from_browser: false,
    };
    let intake = Intake { at: t7 + Duration::minutes(12), captures: vec![capture], ..Intake::default() };
    store.intake(intake, p.clone()).await.unwrap();
    same_as_scan(store, "an identity joined").await;
    assert_eq!(refresh(store, t7 + Duration::minutes(30)).await.unwrap(), 1, "only day 19 changed");

    // Retention: what ended and was received before t1 + 1 s goes (the refunds, routed nowhere,
    // and the orders whose deliveries all ended delivered, rejected or skipped).
    let t8 = t7 + Duration::hours(1);
    let pruned = store.prune(t1 + Duration::seconds(1), 1000).await.unwrap();
    assert!(pruned.events >= 8, "{pruned:?}");
    same_as_scan(store, "pruned").await;
    refresh(store, t8).await.unwrap();
    same_as_scan(store, "pruned, refreshed").await;
}

#[tokio::test]
async fn sqlite_rollups_equal_a_scan_through_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db"), Synchronous::Normal).unwrap();
    drive(&store).await;
}

#[tokio::test]
async fn postgres_rollups_equal_a_scan_through_every_change() {
    let store = crate::store::postgres::testdb::fresh().await;
    drive(&store).await;
}

/// After a refresh, another with nothing changed recomputes no day; one new event of an old day
/// recomputes that day alone.
#[tokio::test]
async fn a_refresh_recomputes_only_the_days_that_changed() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db"), Synchronous::Normal).unwrap();
    let t1 = at(20, 12);
    let events = (10..20u32).map(|d| event(&format!("o{d}"), "order_paid", at(d, 9), t1, true)).collect();
    store.intake(Intake::of_events(t1, events), planner()).await.unwrap();
    assert_eq!(refresh(&store, t1 + Duration::minutes(10)).await.unwrap(), HORIZON_DAYS as usize);
    assert_eq!(refresh(&store, t1 + Duration::minutes(20)).await.unwrap(), 0);
    let t2 = t1 + Duration::hours(1);
    let late = event("late", "order_paid", at(11, 9), t2, true);
    store.intake(Intake::of_events(t2, vec![late]), planner()).await.unwrap();
    assert_eq!(refresh(&store, t2 + Duration::minutes(10)).await.unwrap(), 1);
    assert_eq!(refresh(&store, t2 + Duration::minutes(20)).await.unwrap(), 0);
}
