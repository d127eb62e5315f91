//! Concurrent intake on a real PostgreSQL: many `Store::intake` calls at once, answered each with
//! its own results; each event stored once; one call's failure is its own.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeZone, Utc};

use crate::core::plan::Planner;
use crate::core::{Event, EventId, Kind, Subject};
use crate::store::postgres::testdb;
use crate::store::{IngestStatus, Intake, Store};

fn event(order: u32, value: f64) -> Event {
    let subject = Subject { kind: "order".into(), id: order.to_string() };
    let kind = Kind::parse("order_paid").unwrap();
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: at,
        received_at: at,
        subject,
        value: Some(value),
        currency: None,
        items: vec![],
        identity: Default::default(),
        consent: Default::default(),
        attributes: BTreeMap::new(),
        joined: vec![],
    }
}

async fn count(store: &crate::store::postgres::PgStore, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_each_answered_for_their_own_events_and_each_event_is_stored_once() {
    let store = Arc::new(testdb::fresh().await);
    let planner = Arc::new(Planner::default());
    // 240 calls over 60 orders: four calls per order, the last of each a restatement.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..240u32 {
        let (store, planner) = (store.clone(), planner.clone());
        let value = if i >= 180 { 2.0 } else { 1.0 };
        let e = event(i % 60, value);
        tasks.spawn(async move {
            (i, e.clone(), store.intake(Intake::of_events(Utc::now(), vec![e]), planner).await.unwrap().events)
        });
    }
    let mut by_order: BTreeMap<u32, Vec<(Event, IngestStatus)>> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (i, e, results) = done.unwrap();
        assert_eq!(results.len(), 1, "one answer per event of the call");
        assert_eq!(results[0].event_id, e.event_id.as_str(), "the call's own event");
        by_order.entry(i % 60).or_default().push((e, results[0].status));
    }
    let mut conflicts = 0;
    for (order, answers) in &by_order {
        let accepted: Vec<&Event> =
            answers.iter().filter(|(_, s)| *s == IngestStatus::Accepted).map(|(e, _)| e).collect();
        assert_eq!(accepted.len(), 1, "order {order}: {answers:?}");
        for (e, status) in answers.iter().filter(|(_, s)| *s != IngestStatus::Accepted) {
            let expected = if e.value == accepted[0].value { IngestStatus::Duplicate } else { IngestStatus::Conflict };
            assert_eq!(*status, expected, "order {order}");
            conflicts += i64::from(*status == IngestStatus::Conflict);
        }
    }
    assert_eq!(count(&store, "SELECT count(*) FROM events").await, 60);
    assert_eq!(count(&store, "SELECT count(*) FROM conflicts").await, conflicts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_the_ledger_refuses_fails_alone() {
    let store = Arc::new(testdb::fresh().await);
    let planner = Arc::new(Planner::default());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100u32 {
        let (store, planner) = (store.clone(), planner.clone());
        let mut e = event(i, 1.0);
        if i == 50 {
            // PostgreSQL text cannot hold a NUL: this call's insert fails.
            e.source = "a\0b".into();
        }
        tasks.spawn(async move {
            (i, store.intake(Intake::of_events(Utc::now(), vec![e]), planner).await.map(|r| r.events))
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (i, result) = done.unwrap();
        match result {
            Ok(results) => {
                assert_ne!(i, 50, "the refused call got an answer");
                assert_eq!(results[0].status, IngestStatus::Accepted, "call {i}");
            }
            Err(e) => assert_eq!(i, 50, "call {i} failed with another's error: {e}"),
        }
    }
    assert_eq!(count(&store, "SELECT count(*) FROM events").await, 99);
}
