//! `Store::intake` keeps a message whole: when its last piece (the receipt) cannot be written,
//! none of its capture, alias or event is kept either — on SQLite and on PostgreSQL. The failure
//! is a real one, raised by the database: a trigger that refuses receipts.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::core::plan::{ConsentPolicy, ConsentPurpose, OnPersonalDataDenied, Planner, Rules};
use crate::core::{Consent, Event, EventId, Identity, IdentityCapture, Kind, Route, Subject};
use crate::store::sqlite::{SqliteStore, Synchronous};
use crate::store::{IngestStatus, Intake, Receipt, ReceiptFilter, ReceiptStatus, Store};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn order() -> Subject {
    Subject { kind: "order".into(), id: "1042".into() }
}

fn event() -> Event {
    let kind = Kind::parse("order_paid").unwrap();
    Event {
        event_id: EventId::derive(&order(), &kind),
        kind,
        source: "stripe".into(),
        occurred_at: now() - Duration::hours(1),
        received_at: now(),
        subject: order(),
        value: Some(59.9),
        currency: None,
        items: vec![],
        identity: Identity::default(),
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: vec![],
    }
}

/// A webhook's worth: the buyer's client id for the order, the payment's alias, the order's
/// event, and the webhook's receipt.
fn message() -> Intake {
    let identity = Identity { client_id: Some("555.777".into()), ..Identity::default() };
    Intake {
        at: now(),
        captures: vec![IdentityCapture {
            subject: order(),
            captured_at: now(),
            identity,
            consent: Consent::default(),
            from_browser: false,
        }],
        aliases: vec![("stripe:pi_1".into(), order())],
        events: vec![event()],
        receipts: vec![],
        mapped: Some(Receipt {
            source: "stripe".into(),
            receipt_id: "evt_1".into(),
            topic: "checkout.session.completed".into(),
            status: ReceiptStatus::Mapped,
            detail: None,
            at: now(),
        }),
    }
}

/// GA4-like rules: needs a client id, 72 h window, consent assumed.
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

fn planner() -> Arc<Planner> {
    let route = Route { event: "purchase".into(), ..Route::default() };
    let catalog = BTreeMap::from([("order_paid".to_owned(), vec![("ga4".to_owned(), route)])]);
    let policy = ConsentPolicy {
        purpose: ConsentPurpose::Analytics,
        on_personal_data_denied: OnPersonalDataDenied::Strip,
        assume_granted: true,
    };
    let rules: BTreeMap<String, Arc<dyn Rules>> =
        BTreeMap::from([("ga4".to_owned(), Arc::new(NeedsClient(policy)) as _)]);
    Arc::new(Planner::new(catalog, rules))
}

/// With receipts refused, the message fails and leaves nothing; once they are accepted again the
/// same message is kept whole, its event joined with the capture it carried.
async fn a_message_is_kept_whole_or_not_at_all(store: &dyn Store, refuse_receipts: bool) {
    let id = event().event_id.to_string();
    if refuse_receipts {
        assert!(store.intake(message(), planner()).await.is_err(), "the receipt's failure fails the message");
        assert_eq!(store.event(&id).await.unwrap(), None, "no event of the failed message");
        assert_eq!(store.resolve_alias("stripe:pi_1").await.unwrap(), None, "no alias of the failed message");
        assert!(store.receipts(ReceiptFilter::default()).await.unwrap().is_empty());
        return;
    }
    let kept = store.intake(message(), planner()).await.unwrap();
    assert_eq!(kept.events.len(), 1);
    assert_eq!(kept.events[0].status, IngestStatus::Accepted);
    let view = store.event(&id).await.unwrap().expect("the event is stored");
    assert_eq!(view.event.identity.client_id.as_deref(), Some("555.777"), "joined with the message's own capture");
    assert_eq!(store.resolve_alias("stripe:pi_1").await.unwrap(), Some(order()));
    let receipts = store.receipts(ReceiptFilter::default()).await.unwrap();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0].status, "mapped");
    assert_eq!(receipts[0].detail.as_deref(), Some(format!("{id} accepted").as_str()));
}

/// The capture of a failed message did not reach the bridge either: an event of its subject
/// ingested afterwards finds no client id to join.
async fn the_failed_capture_left_no_identity(store: &dyn Store) {
    let results = store.intake(Intake::of_events(Utc::now(), vec![event()]), planner()).await.unwrap().events;
    assert_eq!(results[0].status, IngestStatus::Accepted);
    let view = store.event(&event().event_id.to_string()).await.unwrap().unwrap();
    assert_eq!(view.event.identity.client_id, None);
}

#[tokio::test]
async fn sqlite_keeps_nothing_of_a_message_whose_receipt_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = SqliteStore::open(&path, Synchronous::Normal).unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER refuse_receipts BEFORE INSERT ON receipts \
             BEGIN SELECT RAISE(ABORT, 'receipts refused by the test'); END;",
        )
        .unwrap();
    a_message_is_kept_whole_or_not_at_all(&store, true).await;
    the_failed_capture_left_no_identity(&store).await;

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("ledger.db"), Synchronous::Normal).unwrap();
    a_message_is_kept_whole_or_not_at_all(&store, false).await;
}

#[tokio::test]
async fn postgres_keeps_nothing_of_a_message_whose_receipt_fails() {
    let store = crate::store::postgres::testdb::fresh().await;
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_receipts() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'receipts refused by the test'; END $$; \
         CREATE TRIGGER refuse_receipts BEFORE INSERT ON receipts FOR EACH ROW EXECUTE FUNCTION refuse_receipts();",
    )
    .execute(store.pool())
    .await
    .unwrap();
    a_message_is_kept_whole_or_not_at_all(&store, true).await;
    the_failed_capture_left_no_identity(&store).await;

    let store = crate::store::postgres::testdb::fresh().await;
    a_message_is_kept_whole_or_not_at_all(&store, false).await;
}

/// Messages that share subjects, committed at once on PostgreSQL — half capture identity for
/// order a and carry an event of order b that waits for identity, half the other way round —
/// all commit: a message takes its wait locks in one order, before anything else, so none
/// deadlocks with another.
#[tokio::test]
async fn postgres_intakes_sharing_subjects_all_commit() {
    let store = Arc::new(crate::store::postgres::testdb::fresh().await);
    let waits = BTreeMap::from([("ga4".to_owned(), Duration::minutes(15))]);
    let planner = Arc::new(Arc::try_unwrap(planner()).ok().unwrap().with_identity_waits(waits));
    let subject = |id: &str| Subject { kind: "order".into(), id: id.into() };
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (store, planner) = (store.clone(), planner.clone());
        let ids = if i % 2 == 0 { ["a", "b"] } else { ["b", "a"] };
        tasks.push(tokio::spawn(async move {
            let capture = |id: &str| IdentityCapture {
                subject: subject(id),
                captured_at: now(),
                identity: Identity { session_id: Some(format!("s{i}")), ..Identity::default() },
                consent: Consent::default(),
                from_browser: false,
            };
            let event = |id: &str| Event {
                event_id: EventId::derive(&subject(id), &event().kind),
                subject: subject(id),
                ..event()
            };
            let intake = Intake {
                at: now(),
                captures: vec![capture(ids[0])],
                aliases: ids.iter().map(|id| (format!("stripe:pi_{id}"), subject(id))).collect(),
                events: vec![event(ids[1])],
                ..Intake::default()
            };
            store.intake(intake, planner).await
        }));
    }
    for t in tasks {
        let result = t.await.unwrap().expect("every message commits");
        assert_eq!(result.events.len(), 1);
    }
    for id in ["a", "b"] {
        assert_eq!(store.resolve_alias(&format!("stripe:pi_{id}")).await.unwrap(), Some(subject(id)));
    }
}
