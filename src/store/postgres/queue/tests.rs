//! The queue on a real PostgreSQL: leases, attempt numbering, concurrent claimers, the per-subject
//! ordering rule, recovery of expired leases, replays. Rows are written with plain SQL (not
//! `ingest`), so each test states exactly the ledger it starts from.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::PgPool;

use crate::core::RequestRecord;
use crate::core::{AttemptOutcome, DeliveryState, Event, EventId, Kind, Route, Subject};
use crate::store::postgres::{testdb, to_us, PgStore};
use crate::store::{BatchRecord, DeliveryUpdate, Recovered, Store};

pub(in crate::store::postgres) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

const LEASE: Duration = Duration::from_secs(30);

/// An `order_paid`-like event of `order:{order}` that occurred `ago` before `t0`.
pub(in crate::store::postgres) fn event(order: &str, kind: &str, ago: chrono::Duration) -> Event {
    let subject = Subject { kind: "order".into(), id: order.into() };
    let kind = Kind::parse(kind).unwrap();
    Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: t0() - ago,
        received_at: t0() - secs(10),
        subject,
        value: Some(59.9),
        currency: None,
        items: vec![],
        identity: Default::default(),
        consent: Default::default(),
        attributes: BTreeMap::new(),
        joined: vec![],
    }
}

pub(in crate::store::postgres) async fn insert_event(pool: &PgPool, e: &Event) {
    sqlx::query(
        "INSERT INTO events (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, \
         content_hash, routed, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, TRUE, $9)",
    )
    .bind(e.event_id.as_str())
    .bind(e.kind.as_str())
    .bind(&e.source)
    .bind(&e.subject.kind)
    .bind(&e.subject.id)
    .bind(to_us(e.occurred_at))
    .bind(to_us(e.received_at))
    .bind(e.content_hash())
    .bind(serde_json::to_string(e).unwrap())
    .execute(pool)
    .await
    .unwrap();
}

/// A delivery row of `event` to `destination` in `state`, due at `due` (pending rows), with a
/// stored route unless `route` is `None` (a row written before routes were stored).
pub(in crate::store::postgres) async fn insert_delivery(
    pool: &PgPool,
    event: &Event,
    destination: &str,
    route: Option<&Route>,
    state: DeliveryState,
    due: Option<DateTime<Utc>>,
) -> i64 {
    let dest_event = route.map_or_else(|| event.kind.as_str().to_owned(), |r| r.event.clone());
    sqlx::query_scalar(
        "INSERT INTO deliveries (event_id, destination, dest_event, browser_tracked, strip_personal, state, \
         next_attempt_at, created_at, updated_at, route) VALUES ($1, $2, $3, FALSE, FALSE, $4, $5, $6, $6, $7) \
         RETURNING id",
    )
    .bind(event.event_id.as_str())
    .bind(destination)
    .bind(dest_event)
    .bind(state.as_str())
    .bind(due.map(to_us))
    .bind(to_us(t0() - secs(10)))
    .bind(route.map(|r| serde_json::to_string(r).unwrap()))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// An event and its one pending delivery to `destination`, due `t0`.
pub(in crate::store::postgres) async fn pending(pool: &PgPool, e: &Event, destination: &str, route: &str) -> i64 {
    insert_event(pool, e).await;
    let route = Route { event: route.into(), ..Route::default() };
    insert_delivery(pool, e, destination, Some(&route), DeliveryState::Pending, Some(t0())).await
}

/// (state, reason, attempts, lease_owner, next_attempt_at, forced) of a delivery.
type Row = (String, Option<String>, i32, Option<String>, Option<i64>, bool);

pub(in crate::store::postgres) async fn row(pool: &PgPool, id: i64) -> Row {
    sqlx::query_as("SELECT state, reason, attempts, lease_owner, next_attempt_at, forced FROM deliveries WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// (attempt, outcome, request_id, forced) of each attempt of a delivery, in order.
pub(in crate::store::postgres) async fn attempts(pool: &PgPool, id: i64) -> Vec<(i32, String, Option<i64>, bool)> {
    sqlx::query_as("SELECT attempt, outcome, request_id, forced FROM attempts WHERE delivery_id = $1 ORDER BY id")
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap()
}

pub(in crate::store::postgres) fn request(at: DateTime<Utc>) -> RequestRecord {
    RequestRecord {
        endpoint: "collect",
        sent_at: at,
        duration: Duration::from_millis(12),
        status: Some(204),
        error: None,
        response_excerpt: String::new(),
        body_sha256: "ab".repeat(32),
        body: Some("{\"events\":[]}".into()),
    }
}

pub(in crate::store::postgres) fn update(id: i64, state: DeliveryState, outcome: AttemptOutcome) -> DeliveryUpdate {
    DeliveryUpdate {
        delivery_id: id,
        state,
        reason: (state != DeliveryState::Pending).then(|| "sent".to_owned()),
        messages: vec![],
        next_attempt_at: None,
        attempted: true,
        outcome,
        detail: None,
        payload_sha256: Some("cd".repeat(32)),
        request: Some(0),
        forced: false,
    }
}

fn retry(id: i64, at: DateTime<Utc>) -> DeliveryUpdate {
    DeliveryUpdate {
        reason: Some("http_503".into()),
        next_attempt_at: Some(at),
        ..update(id, DeliveryState::Pending, AttemptOutcome::Retry)
    }
}

fn ids(claimed: &[crate::core::Claimed]) -> Vec<i64> {
    claimed.iter().map(|c| c.delivery_id).collect()
}

#[tokio::test]
async fn claim_leases_due_deliveries_of_one_destination_in_due_order() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let (a, b, c) =
        (event("1", "order_paid", secs(60)), event("2", "order_paid", secs(60)), event("3", "order_paid", secs(60)));
    for e in [&a, &b, &c] {
        insert_event(pool, e).await;
    }
    let stored = Route { event: "purchase".into(), browser_tracked: true, action_source: Some("website".into()) };
    let later = insert_delivery(pool, &a, "ga4", Some(&stored), DeliveryState::Pending, Some(t0() - secs(1))).await;
    let earlier = insert_delivery(pool, &b, "ga4", None, DeliveryState::Pending, Some(t0() - secs(5))).await;
    let not_due = insert_delivery(pool, &c, "ga4", None, DeliveryState::Pending, Some(t0() + secs(1))).await;
    let other_destination = insert_delivery(pool, &a, "meta", None, DeliveryState::Pending, Some(t0())).await;
    insert_delivery(pool, &b, "meta", None, DeliveryState::Delivered, None).await;

    let first = store.claim("ga4", 1, LEASE, "w1", t0()).await.unwrap();
    assert_eq!(ids(&first), vec![earlier], "the earliest due goes first");
    assert_eq!(first[0].event, b, "the stored event comes back whole");
    assert_eq!(first[0].route, Route { event: "order_paid".into(), ..Route::default() }, "rebuilt from columns");
    assert_eq!((first[0].attempts, first[0].forced, first[0].created_at), (0, false, t0() - secs(10)));

    let rest = store.claim("ga4", 10, LEASE, "w2", t0()).await.unwrap();
    assert_eq!(ids(&rest), vec![later], "claimed rows and rows not yet due stay out");
    assert_eq!(rest[0].route, stored);
    assert_eq!(rest[0].event, a);

    let (state, _, _, owner, _, _) = row(pool, later).await;
    assert_eq!((state.as_str(), owner.as_deref()), ("claimed", Some("w2")));
    let until: Option<i64> = sqlx::query_scalar("SELECT lease_until FROM deliveries WHERE id = $1")
        .bind(later)
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(until, Some(to_us(t0()) + LEASE.as_micros() as i64));
    assert_eq!(row(pool, not_due).await.0, "pending");
    assert_eq!(row(pool, other_destination).await.0, "pending");
    assert!(store.claim("ga4", 10, LEASE, "w3", t0()).await.unwrap().is_empty());

    let both = store.claim("ga4", 10, LEASE, "w3", t0() + secs(1)).await.unwrap();
    assert_eq!(ids(&both), vec![not_due]);
}

#[tokio::test]
async fn claimed_rows_come_back_sorted_by_id() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let mut expected = Vec::new();
    for (i, due) in [5, 1, 4, 2, 3].into_iter().enumerate() {
        let e = event(&i.to_string(), "order_paid", secs(60));
        insert_event(pool, &e).await;
        expected.push(insert_delivery(pool, &e, "ga4", None, DeliveryState::Pending, Some(t0() - secs(due))).await);
    }
    expected.sort();
    assert_eq!(ids(&store.claim("ga4", 10, LEASE, "w", t0()).await.unwrap()), expected);
}

#[tokio::test]
async fn mark_release_and_record_number_attempts() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let one = pending(pool, &event("1", "order_paid", secs(60)), "ga4", "purchase").await;
    let two = pending(pool, &event("2", "order_paid", secs(60)), "ga4", "purchase").await;
    let three = pending(pool, &event("3", "order_paid", secs(60)), "ga4", "purchase").await;
    assert_eq!(ids(&store.claim("ga4", 10, LEASE, "w", t0()).await.unwrap()), vec![one, two, three]);

    store.release(&[three], t0() + secs(1)).await.unwrap();
    assert_eq!(row(pool, three).await, ("pending".into(), None, 0, None, Some(to_us(t0() + secs(1))), false));
    store.mark_sending(&[one, two, three], "w", t0() + secs(1)).await.unwrap();
    assert_eq!(row(pool, one).await.0, "sending");
    assert_eq!(row(pool, two).await.0, "sending");
    assert_eq!(row(pool, three).await.0, "pending", "only claimed rows are marked sending");
    store.release(&[one], t0() + secs(1)).await.unwrap();
    assert_eq!(row(pool, one).await.0, "sending", "a sending row is not released");

    let again = t0() + secs(60);
    let rec = BatchRecord {
        destination: "ga4".into(),
        owner: "w".into(),
        requests: vec![request(t0() + secs(1))],
        updates: vec![update(one, DeliveryState::Delivered, AttemptOutcome::Delivered), retry(two, again)],
        follow_ups: vec![],
    };
    store.record(rec, t0() + secs(2)).await.unwrap();
    let request_id: i64 = sqlx::query_scalar("SELECT id FROM requests").fetch_one(pool).await.unwrap();
    assert_eq!(row(pool, one).await, ("delivered".into(), Some("sent".into()), 1, None, None, false));
    assert_eq!(row(pool, two).await, ("pending".into(), Some("http_503".into()), 1, None, Some(to_us(again)), false));
    assert_eq!(attempts(pool, one).await, vec![(1, "delivered".into(), Some(request_id), false)]);
    assert_eq!(attempts(pool, two).await, vec![(1, "retry".into(), Some(request_id), false)]);

    let claimed = store.claim("ga4", 10, LEASE, "w", again).await.unwrap();
    assert_eq!(ids(&claimed), vec![two, three]);
    assert_eq!(claimed[0].attempts, 1, "the worker sees the attempts made before");
    let refused = DeliveryUpdate {
        attempted: false,
        request: None,
        ..update(three, DeliveryState::Rejected, AttemptOutcome::Rejected)
    };
    let rec = BatchRecord {
        destination: "ga4".into(),
        owner: "w".into(),
        requests: vec![request(again)],
        updates: vec![update(two, DeliveryState::Delivered, AttemptOutcome::Delivered), refused],
        follow_ups: vec![],
    };
    store.record(rec, again).await.unwrap();
    assert_eq!(row(pool, two).await.2, 2);
    assert_eq!(attempts(pool, two).await.last().unwrap().0, 2, "the second attempt is numbered 2");
    assert_eq!(row(pool, three).await.0, "rejected");
    assert_eq!(attempts(pool, three).await, vec![(0, "rejected".into(), None, false)], "a refusal is not an attempt");
}

/// Only the claim that still holds a delivery marks it `sending`, once: a batch whose lease ran
/// out (taken back, claimed again) or another process's claim gets nothing back, so it sends nothing.
#[tokio::test]
async fn a_delivery_claimed_again_is_marked_sending_for_one_claim_only() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let id = pending(pool, &event("1", "order_paid", secs(60)), "ga4", "purchase").await;
    store.claim("ga4", 1, LEASE, "w", t0()).await.unwrap();
    let later = t0() + secs(60);
    store.recover(Arc::new(recovery::planner()), false, later).await.unwrap();
    assert_eq!(ids(&store.claim("ga4", 1, LEASE, "w", later).await.unwrap()), vec![id]);
    assert!(store.mark_sending(&[id], "other", later).await.unwrap().is_empty(), "not its claim");
    assert_eq!(store.mark_sending(&[id], "w", later).await.unwrap(), vec![id], "the first to mark sends");
    assert!(store.mark_sending(&[id], "w", later).await.unwrap().is_empty(), "the stale batch holds nothing");
    assert_eq!(row(pool, id).await.0, "sending");
}

#[tokio::test]
async fn a_recording_for_a_delivery_taken_over_is_logged_but_changes_nothing() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let id = pending(pool, &event("1", "order_paid", secs(60)), "ga4", "purchase").await;
    store.claim("ga4", 1, LEASE, "slow", t0()).await.unwrap();
    let later = t0() + secs(60);
    let recovered = store.recover(Arc::new(recovery::planner()), false, later).await.unwrap();
    assert_eq!(recovered, Recovered { released: 1, ..Recovered::default() });
    assert_eq!(ids(&store.claim("ga4", 1, LEASE, "fast", later).await.unwrap()), vec![id]);
    let rec = |state, owner: &str| BatchRecord {
        destination: "ga4".into(),
        owner: owner.into(),
        requests: vec![request(later)],
        updates: vec![update(id, state, AttemptOutcome::Delivered)],
        follow_ups: vec![],
    };
    store.record(rec(DeliveryState::Delivered, "fast"), later).await.unwrap();
    assert_eq!(row(pool, id).await.2, 1);
    // The slow worker's late result: the row has ended, so it stays as the new owner left it.
    store.record(rec(DeliveryState::Rejected, "slow"), later + secs(1)).await.unwrap();
    assert_eq!(row(pool, id).await, ("delivered".into(), Some("sent".into()), 1, None, None, false));
    let logged: Vec<i32> = attempts(pool, id).await.into_iter().map(|a| a.0).collect();
    assert_eq!(logged, vec![1, 1], "the late attempt is logged under the current count");
}

#[tokio::test]
async fn record_keeps_forced_while_pending_and_links_follow_ups() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let id = pending(pool, &event("1", "order_paid", secs(60)), "gads", "purchase").await;
    sqlx::query("UPDATE deliveries SET forced = TRUE WHERE id = $1").bind(id).execute(pool).await.unwrap();
    assert!(store.claim("gads", 1, LEASE, "w", t0()).await.unwrap()[0].forced);
    let rec = BatchRecord {
        destination: "gads".into(),
        owner: "w".into(),
        requests: vec![request(t0()), request(t0())],
        updates: vec![DeliveryUpdate { forced: true, request: Some(1), ..retry(id, t0()) }],
        follow_ups: vec![(1, "jobs/7".into(), t0() + secs(1800)), (5, "nowhere".into(), t0())],
    };
    store.record(rec, t0()).await.unwrap();
    assert!(row(pool, id).await.5, "a retry keeps the forced flag");
    let requests: Vec<(i64, Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT id, platform_request_id, follow_up_at FROM requests ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!((&requests[0].1, requests[0].2), (&None, None));
    assert_eq!((requests[1].1.as_deref(), requests[1].2), (Some("jobs/7"), Some(to_us(t0() + secs(1800)))));
    assert_eq!(attempts(pool, id).await, vec![(1, "retry".into(), Some(requests[1].0), true)]);

    store.claim("gads", 1, LEASE, "w", t0()).await.unwrap();
    let rec = BatchRecord {
        destination: "gads".into(),
        owner: "w".into(),
        requests: vec![],
        updates: vec![DeliveryUpdate {
            request: None,
            ..update(id, DeliveryState::Delivered, AttemptOutcome::Delivered)
        }],
        follow_ups: vec![],
    };
    store.record(rec, t0()).await.unwrap();
    assert!(!row(pool, id).await.5, "an ended delivery is no longer forced");
}

/// Several claimers on two connection pools (two processes) drain one queue: each delivery goes
/// to exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_share_a_delivery_and_together_take_all() {
    let store = Arc::new(testdb::fresh().await);
    let pool = store.pool();
    let db: String = sqlx::query_scalar("SELECT current_database()").fetch_one(pool).await.unwrap();
    let admin = testdb::admin_url();
    let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
    let other = Arc::new(PgStore::connect(&url).await.unwrap());
    let mut all = BTreeSet::new();
    for i in 0..300 {
        all.insert(pending(pool, &event(&i.to_string(), "order_paid", secs(60)), "ga4", "purchase").await);
    }
    let start = Arc::new(tokio::sync::Barrier::new(6));
    let mut tasks = Vec::new();
    for n in 0..6 {
        let s: Arc<dyn Store> = if n % 2 == 0 { store.clone() } else { other.clone() };
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let mut got = Vec::new();
            loop {
                let claimed = s.claim("ga4", 7, LEASE, &format!("w{n}"), t0()).await.unwrap();
                if claimed.is_empty() {
                    return got;
                }
                got.extend(ids(&claimed));
            }
        }));
    }
    let mut seen = BTreeSet::new();
    let mut claimers = 0;
    for t in tasks {
        let got = t.await.unwrap();
        claimers += usize::from(!got.is_empty());
        for id in got {
            assert!(seen.insert(id), "delivery {id} was claimed twice");
        }
    }
    assert_eq!(seen, all, "together the claimers take every delivery");
    assert!(claimers > 1, "the claims ran concurrently");
    let owners: i64 =
        sqlx::query_scalar("SELECT count(*) FROM deliveries WHERE state = 'claimed' AND lease_owner IS NOT NULL")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(owners, 300);
}

#[tokio::test]
async fn a_refund_waits_for_its_purchase() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let purchase = pending(pool, &event("1", "order_paid", secs(120)), "gads", "purchase").await;
    let refund = pending(pool, &event("1", "order_refunded", secs(60)), "gads", "refund").await;
    // The refund is due first: the purchase's delivery waits for a retry.
    sqlx::query("UPDATE deliveries SET next_attempt_at = $2 WHERE id = $1")
        .bind(purchase)
        .bind(to_us(t0() + secs(30)))
        .execute(pool)
        .await
        .unwrap();
    let unrelated = pending(pool, &event("2", "order_refunded", secs(60)), "gads", "refund").await;
    let elsewhere = {
        let refund_event = event("1", "order_refunded", secs(60));
        let route = Route { event: "Refund".into(), ..Route::default() };
        insert_delivery(pool, &refund_event, "meta", Some(&route), DeliveryState::Pending, Some(t0())).await
    };

    assert_eq!(ids(&store.claim("gads", 10, LEASE, "w", t0()).await.unwrap()), vec![unrelated]);
    assert_eq!(ids(&store.claim("meta", 10, LEASE, "w", t0()).await.unwrap()), vec![elsewhere], "per destination");

    let due = t0() + secs(30);
    assert_eq!(ids(&store.claim("gads", 10, LEASE, "w", due).await.unwrap()), vec![purchase]);
    assert!(store.claim("gads", 10, LEASE, "w", due).await.unwrap().is_empty(), "waits while the purchase is claimed");
    store.mark_sending(&[purchase], "w", due).await.unwrap();
    assert!(store.claim("gads", 10, LEASE, "w", due).await.unwrap().is_empty(), "waits while it is sending");
    let rec = BatchRecord {
        destination: "gads".into(),
        owner: "w".into(),
        requests: vec![request(due)],
        updates: vec![update(purchase, DeliveryState::Delivered, AttemptOutcome::Delivered)],
        follow_ups: vec![],
    };
    store.record(rec, due).await.unwrap();
    assert_eq!(ids(&store.claim("gads", 10, LEASE, "w", due).await.unwrap()), vec![refund]);
}

mod bodies;
mod recovery;
mod rounds;
mod settle;
