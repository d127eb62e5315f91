//! The capture path re-plans deliveries waiting for identity, on SQLite and on PostgreSQL: the
//! identity is joined onto the event and the delivery is due at once; aliases lead to the
//! subject; every rule still applies; waits that ended, and deliveries already sent, are left.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};

use crate::core::delivery::reason;
use crate::core::plan::{ConsentPolicy, ConsentPurpose, OnPersonalDataDenied, Planner, Rules};
use crate::core::{Consent, ConsentState, DeliveryState, Event, EventId, Identity, Kind, Route, Subject};
use crate::store::postgres::testdb;
use crate::store::sqlite::{SqliteStore, Synchronous};
use crate::store::{IdentityCapture, IngestResult, Intake, PlannedDelivery, Store, StoreError};

/// GA4-like: needs a client id; consent for analytics, not assumed.
struct NeedsClient(ConsentPolicy);

impl Rules for NeedsClient {
    fn window(&self) -> Duration {
        Duration::hours(72)
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

/// `order_paid` → `ga4`, which waits 15 minutes for identity.
fn planner() -> Arc<Planner> {
    let route = Route { event: "purchase".into(), ..Route::default() };
    let catalog = [("order_paid".to_owned(), vec![("ga4".to_owned(), route)])].into_iter().collect();
    let policy = ConsentPolicy {
        purpose: ConsentPurpose::Analytics,
        on_personal_data_denied: OnPersonalDataDenied::Strip,
        assume_granted: false,
    };
    let rules: BTreeMap<String, Arc<dyn Rules>> =
        [("ga4".to_owned(), Arc::new(NeedsClient(policy)) as Arc<dyn Rules>)].into_iter().collect();
    Arc::new(
        Planner::new(catalog, rules)
            .with_identity_waits([("ga4".to_owned(), Duration::minutes(15))].into_iter().collect()),
    )
}

fn order(id: &str) -> Subject {
    Subject { kind: "order".into(), id: id.into() }
}

/// A paid order as a webhook states it, received `ago` before now: no client id, no consent.
fn webhook(id: &str, ago: Duration) -> Event {
    let subject = order(id);
    let kind = Kind::parse("order_paid").unwrap();
    // Whole microseconds, as the ledger stores times.
    let received_at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now() - ago, 6);
    Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "stripe".into(),
        occurred_at: received_at - Duration::seconds(5),
        received_at,
        subject,
        value: Some(59.9),
        currency: None,
        items: vec![],
        identity: Identity::default(),
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: vec![],
    }
}

fn capture(subject: Subject, analytics: ConsentState) -> IdentityCapture {
    IdentityCapture {
        subject,
        captured_at: chrono::Utc::now(),
        identity: Identity {
            client_id: Some("555.1700000000".into()),
            session_id: Some("1700000123".into()),
            ..Identity::default()
        },
        consent: Consent { analytics: Some(analytics), ..Consent::default() },
        from_browser: false,
    }
}

fn planned(state: DeliveryState, reason: Option<&'static str>) -> Vec<PlannedDelivery> {
    vec![PlannedDelivery { destination: "ga4".into(), state, reason }]
}

/// Events alone through `Store::intake`: what became of each.
async fn ingest(store: &dyn Store, events: Vec<Event>, planner: Arc<Planner>) -> Result<Vec<IngestResult>, StoreError> {
    store.intake(Intake::of_events(Utc::now(), events), planner).await.map(|r| r.events)
}

/// One capture alone through `Store::intake`: the deliveries it re-planned.
async fn capture_identity(
    store: &dyn Store,
    capture: IdentityCapture,
    planner: Arc<Planner>,
) -> Result<Vec<PlannedDelivery>, StoreError> {
    store.intake(Intake::of_capture(Utc::now(), capture), planner).await.map(|r| r.replanned)
}

const LEASE: StdDuration = StdDuration::from_secs(30);

/// The scenarios, on any store.
async fn scenarios(store: &dyn Store) {
    let planner = planner();

    // Event first: pending, awaiting identity, not due.
    let r = ingest(store, vec![webhook("1", Duration::zero())], planner.clone()).await.unwrap();
    assert_eq!(r[0].deliveries, planned(DeliveryState::Pending, Some(reason::AWAITING_IDENTITY)));
    let id = "order:1:order_paid";
    let v = store.event(id).await.unwrap().unwrap();
    let due = v.deliveries[0].next_attempt_at.unwrap();
    assert_eq!(due, v.event.received_at + Duration::minutes(15), "due when the wait ends, from receipt");
    assert!(store.claim("ga4", 10, LEASE, "w", chrono::Utc::now()).await.unwrap().is_empty());

    // The capture joins and re-plans: due at once, with the captured identity and consent.
    let r = capture_identity(store, capture(order("1"), ConsentState::Granted), planner.clone()).await.unwrap();
    assert_eq!(r, planned(DeliveryState::Pending, None));
    let claimed = store.claim("ga4", 10, LEASE, "w", chrono::Utc::now()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let e = &claimed[0].event;
    assert_eq!(e.identity.client_id.as_deref(), Some("555.1700000000"));
    assert_eq!(e.identity.session_id.as_deref(), Some("1700000123"));
    assert_eq!(e.joined, ["identity.client_id", "identity.session_id", "consent.analytics"]);
    let v = store.event(id).await.unwrap().unwrap();
    assert_eq!(v.event.joined, e.joined, "the join is recorded on the stored event");
    assert_eq!(v.deliveries[0].reason, None);
    assert_eq!(v.attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(), ["identity_joined"]);

    // Consent still applies on re-plan: a capture that denies it ends the delivery.
    ingest(store, vec![webhook("2", Duration::zero())], planner.clone()).await.unwrap();
    let r = capture_identity(store, capture(order("2"), ConsentState::Denied), planner.clone()).await.unwrap();
    assert_eq!(r, planned(DeliveryState::Skipped, Some(reason::CONSENT_DENIED)));
    let v = store.event("order:2:order_paid").await.unwrap().unwrap();
    assert_eq!((v.deliveries[0].state, v.deliveries[0].next_attempt_at), (DeliveryState::Skipped, None));

    // A capture for an alias of the subject re-plans the subject's deliveries.
    ingest(store, vec![webhook("3", Duration::zero())], planner.clone()).await.unwrap();
    store
        .intake(Intake::of_aliases(Utc::now(), vec![("stripe:pi_3".into(), order("3"))]), planner.clone())
        .await
        .unwrap();
    let alias = Subject { kind: "stripe".into(), id: "pi_3".into() };
    let r = capture_identity(store, capture(alias, ConsentState::Granted), planner.clone()).await.unwrap();
    assert_eq!(r, planned(DeliveryState::Pending, None));

    // A wait that has ended is left to the worker (it ends it no_identity): the capture is late.
    ingest(store, vec![webhook("4", Duration::minutes(20))], planner.clone()).await.unwrap();
    let r = capture_identity(store, capture(order("4"), ConsentState::Granted), planner.clone()).await.unwrap();
    assert_eq!(r, vec![]);
    let v = store.event("order:4:order_paid").await.unwrap().unwrap();
    assert_eq!(v.deliveries[0].reason.as_deref(), Some(reason::AWAITING_IDENTITY));
    assert_eq!(v.event.identity.client_id, None, "a late capture joins nothing onto the event");

    // A capture of a subject whose delivery is on its way (or sent) changes nothing.
    let r = capture_identity(store, capture(order("1"), ConsentState::Granted), planner.clone()).await.unwrap();
    assert_eq!(r, vec![]);
}

#[tokio::test]
async fn a_capture_replans_waiting_deliveries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db"), Synchronous::Normal).unwrap();
    scenarios(&store).await;
}

#[tokio::test]
async fn a_capture_replans_waiting_deliveries_on_postgres() {
    let store = testdb::fresh().await;
    scenarios(&store).await;
}

/// An event and its subject's capture committed at the same moment: whichever commits first, the
/// delivery ends up joined and due, never left waiting for a capture that is already in.
async fn racing(store: Arc<dyn Store>) {
    let planner = planner();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40 {
        let id = format!("race{n}");
        let (s, p) = (store.clone(), planner.clone());
        let event = webhook(&id, Duration::zero());
        tasks.spawn(async move { ingest(&*s, vec![event], p).await.map(|_| ()) });
        let (s, p) = (store.clone(), planner.clone());
        tasks.spawn(
            async move { capture_identity(&*s, capture(order(&id), ConsentState::Granted), p).await.map(|_| ()) },
        );
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    for n in 0..40 {
        let v = store.event(&format!("order:race{n}:order_paid")).await.unwrap().unwrap();
        let d = &v.deliveries[0];
        assert_eq!((d.state, d.reason.as_deref()), (DeliveryState::Pending, None), "race{n}");
        assert_eq!(v.event.identity.client_id.as_deref(), Some("555.1700000000"), "race{n}");
    }
}

#[tokio::test]
async fn an_event_and_its_capture_at_once_never_leave_it_waiting_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db"), Synchronous::Normal).unwrap();
    racing(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_and_its_capture_at_once_never_leave_it_waiting_on_postgres() {
    racing(Arc::new(testdb::fresh().await)).await;
}
