//! Reads and retention on a real PostgreSQL database, with rows written as plain SQL; the same
//! fixture is loaded into SQLite too, and both stores must answer alike.

use chrono::{DateTime, Utc};

use super::{ENDED, PRUNABLE_STATES};
use crate::core::pii::{hash_email, hash_phone};
use crate::core::{Consent, Currency, DeliveryState, Event, EventId, Identity, Kind, Subject};
use crate::store::postgres::{from_us, testdb, PgStore};
use crate::store::sqlite::{SqliteStore, Synchronous};
use crate::store::{DeliveryFilter, Pruned, QueueStat, ReceiptFilter, Store};

const T0: i64 = 1_700_000_000_000_000;
const DAY: i64 = 86_400_000_000;
/// Received after the prune cutoff (`T0 + DAY`).
const NEW: i64 = T0 + 10 * DAY;

fn cutoff() -> DateTime<Utc> {
    from_us(T0 + DAY)
}

fn event(id: &str, received_us: i64) -> Event {
    Event {
        event_id: EventId::parse(id).unwrap(),
        kind: Kind::parse("order_paid").unwrap(),
        source: "api".into(),
        occurred_at: from_us(received_us - 1_000_000),
        received_at: from_us(received_us),
        subject: Subject { kind: "order".into(), id: id.into() },
        value: Some(42.5),
        currency: Some(Currency::parse("EUR").unwrap()),
        items: Vec::new(),
        identity: Identity {
            client_id: Some("c1".into()),
            email: Some(hash_email("ada@example.com").unwrap()),
            phone: Some(hash_phone("+33612345678").unwrap()),
            ..Identity::default()
        },
        consent: Consent::default(),
        attributes: Default::default(),
        joined: Vec::new(),
    }
}

fn event_row(seq: i64, id: &str, received_us: i64, routed: bool) -> String {
    let e = event(id, received_us);
    let body = serde_json::to_string(&e).unwrap().replace('\'', "''");
    format!(
        "INSERT INTO events (seq, event_id, kind, source, subject_type, subject_id, occurred_at, received_at, \
         content_hash, routed, body) VALUES ({seq}, '{id}', 'order_paid', 'api', 'order', '{id}', {}, {received_us}, \
         'hash-{id}', {routed}, '{body}');\n",
        received_us - 1_000_000
    )
}

/// (id, event, destination, state, reason, messages, attempts, strip_personal, next_attempt_at, created_at)
type D<'a> = (i64, &'a str, &'a str, &'a str, &'a str, &'a str, i64, bool, &'a str, i64);

fn delivery_row((id, ev, dest, state, reason, messages, attempts, strip, next, created): D<'_>) -> String {
    format!(
        "INSERT INTO deliveries (id, event_id, destination, dest_event, browser_tracked, strip_personal, state, \
         reason, messages, attempts, next_attempt_at, created_at, updated_at) VALUES ({id}, '{ev}', '{dest}', \
         'purchase', FALSE, {strip}, '{state}', {reason}, {messages}, {attempts}, {next}, {created}, {});\n",
        created + 7
    )
}

/// One small ledger: ended, dead, in-doubt, live and unrouted events, old and new; requests,
/// attempts, replays, a conflict, and old and new receipts, aliases and identities.
fn fixture() -> String {
    let mut sql = String::new();
    sql += &event_row(1, "ev-a", T0, true); // ended: delivered + skipped
    sql += &event_row(2, "ev-b", T0 + 1, true); // a dead letter
    sql += &event_row(3, "ev-c", T0 + 2, false); // not routed
    sql += &event_row(4, "ev-d", T0 + 3, true); // live: pending + sending
    sql += &event_row(5, "ev-e", T0 + 4, true); // ended: rejected
    sql += &event_row(6, "ev-f", NEW, true); // ended, but recent
    sql += &event_row(7, "ev-g", T0 + 5, true); // in doubt
    let deliveries: [D<'_>; 10] = [
        (1, "ev-a", "ga4", "delivered", "'sent'", "'[\"kept 1 of 1\"]'", 2, true, "999", T0),
        (2, "ev-a", "meta", "skipped", "'consent_denied'", "NULL", 0, false, "NULL", T0),
        (3, "ev-b", "meta", "dead", "'attempts_exhausted'", "NULL", 5, false, "NULL", T0 + 1),
        (4, "ev-d", "ga4", "pending", "NULL", "NULL", 1, false, "T0_100", T0 + 3),
        (5, "ev-d", "Zeta", "sending", "NULL", "NULL", 0, false, "NULL", T0 + 3),
        (6, "ev-e", "google_ads", "rejected", "'platform_rejected'", "NULL", 1, false, "NULL", T0 + 4),
        (7, "ev-f", "ga4", "delivered", "'sent'", "NULL", 1, true, "NULL", NEW),
        (8, "ev-g", "linkedin", "in_doubt", "'crashed_while_sending'", "NULL", 1, false, "NULL", T0 + 5),
        (9, "ev-g", "ga4", "pending", "NULL", "NULL", 0, false, "7", T0 + 2),
        (10, "ev-d", "meta", "dead", "NULL", "NULL", 0, false, "NULL", T0 + 3),
    ];
    for d in deliveries {
        sql += &delivery_row(d).replace("T0_100", &(T0 + 100).to_string());
    }
    // Requests: 1 and 3 lose their attempts to the prune; 2 backs a dead letter; 4 has a
    // follow-up due; 5 is an old orphan; 6 is recent.
    for (id, dest, sent, follow_up) in [
        (1, "ga4", T0, "NULL"),
        (2, "meta", T0, "NULL"),
        (3, "google_ads", T0, "NULL"),
        (4, "google_ads", T0, "1"),
        (5, "ga4", T0, "NULL"),
        (6, "ga4", NEW, "NULL"),
    ] {
        sql += &format!(
            "INSERT INTO requests (id, destination, endpoint, sent_at, duration_us, status, error, \
             response_excerpt, body_sha256, follow_up_at) VALUES ({id}, '{dest}', 'https://{dest}/send', {sent}, \
             1500, 200, NULL, 'ok {id}', 'sha-{id}', {follow_up});\n"
        );
    }
    for (id, delivery, request, attempt, outcome, forced) in [
        (1, 1, "1", 1, "retry", false),
        (2, 1, "NULL", 2, "delivered", true),
        (3, 3, "2", 1, "dead", false),
        (4, 6, "3", 1, "rejected", false),
        (5, 4, "NULL", 1, "retry", false),
    ] {
        sql += &format!(
            "INSERT INTO attempts (id, delivery_id, request_id, attempt, at, outcome, detail, payload_sha256, forced) \
             VALUES ({id}, {delivery}, {request}, {attempt}, {}, '{outcome}', 'detail {id}', 'p{id}', {forced});\n",
            T0 + id
        );
    }
    sql += &format!(
        "INSERT INTO replays (id, delivery_id, at, previous_state, previous_reason, forced) VALUES \
         (1, 1, {T0}, 'delivered', 'sent', TRUE), (2, 3, {T0}, 'dead', 'attempts_exhausted', FALSE);\n\
         INSERT INTO conflicts (id, event_id, received_at, content_hash, body) VALUES (1, 'ev-a', {}, 'other', '{{}}');\n\
         INSERT INTO receipts (id, source, receipt_id, topic, status, detail, first_at, last_at, times) VALUES \
         (1, 'stripe', 'evt_1', 'charge.refunded', 'mapped', 'ev-a', {T0}, {T0}, 1), \
         (2, 'stripe', 'evt_2', 'customer.created', 'ignored', NULL, {T0}, {NEW}, 3), \
         (3, 'shopify', 'wh_1', 'orders/paid', 'mapped', NULL, {NEW}, {NEW}, 1), \
         (4, 'segment', 'm_1', 'track', 'invalid', 'no kind', {T0}, {}, 1);\n\
         INSERT INTO subject_aliases (alias, subject_type, subject_id, created_at) VALUES \
         ('stripe:pi_1', 'order', '1', {T0}), ('stripe:pi_2', 'order', '2', {NEW});\n\
         INSERT INTO identities (subject_type, subject_id, identity, consent, captured_at, updated_at) VALUES \
         ('order', '1', '{{}}', '{{}}', {T0}, {T0}), ('order', '2', '{{}}', '{{}}', {NEW}, {NEW});\n\
         INSERT INTO identity_captures (id, subject_type, subject_id, captured_at, received_at, identity, consent) \
         VALUES (1, 'order', '1', {T0}, {T0}, '{{}}', '{{}}'), (2, 'order', '2', {NEW}, {NEW}, '{{}}', '{{}}');\n",
        T0 + 9,
        NEW + 1
    );
    sql
}

async fn pg() -> PgStore {
    let store = testdb::fresh().await;
    sqlx::raw_sql(&fixture()).execute(store.pool()).await.expect("load the fixture");
    store
}

fn sqlite() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = SqliteStore::open(&path, Synchronous::Normal).unwrap();
    rusqlite::Connection::open(&path).unwrap().execute_batch(&fixture()).expect("load the fixture");
    (dir, store)
}

fn ids(v: &[crate::store::DeliveryView]) -> Vec<i64> {
    v.iter().map(|d| d.id).collect()
}

#[tokio::test]
async fn event_view_joins_attempts_to_requests_and_names_stripped_fields() {
    let store = pg().await;
    assert_eq!(store.event("nope").await.unwrap(), None);
    let v = store.event("ev-a").await.unwrap().expect("ev-a is stored");
    assert_eq!(v.event, event("ev-a", T0));
    assert_eq!((v.routing.as_str(), v.content_hash.as_str()), ("routed", "hash-ev-a"));
    assert_eq!(ids(&v.deliveries), [1, 2]);
    let (ga4, meta) = (&v.deliveries[0], &v.deliveries[1]);
    assert_eq!((ga4.state, ga4.reason.as_deref(), ga4.attempts), (DeliveryState::Delivered, Some("sent"), 2));
    assert_eq!(ga4.messages, ["kept 1 of 1"]);
    assert!(ga4.personal_fields_stripped);
    assert_eq!(ga4.stripped_fields, ["email", "phone"]);
    assert_eq!(ga4.next_attempt_at, None, "only a pending delivery shows a next attempt");
    assert_eq!((ga4.created_at, ga4.updated_at), (from_us(T0), from_us(T0 + 7)));
    assert!(!meta.personal_fields_stripped && meta.stripped_fields.is_empty() && meta.messages.is_empty());
    // Attempts of this event only, in order; the one with a request carries the request's fields.
    assert_eq!(v.attempts.len(), 2);
    let (a1, a2) = (&v.attempts[0], &v.attempts[1]);
    assert_eq!((a1.delivery_id, a1.attempt, a1.outcome.as_str(), a1.forced), (1, 1, "retry", false));
    assert_eq!(a1.at, from_us(T0 + 1));
    assert_eq!(a1.endpoint.as_deref(), Some("https://ga4/send"));
    assert_eq!((a1.http_status, a1.duration_ms), (Some(200), Some(1.5)));
    assert_eq!((a1.response_excerpt.as_deref(), a1.request_sha256.as_deref()), (Some("ok 1"), Some("sha-1")));
    assert_eq!((a1.detail.as_deref(), a1.payload_sha256.as_deref()), (Some("detail 1"), Some("p1")));
    assert_eq!((a2.attempt, a2.forced, a2.endpoint.as_deref(), a2.http_status), (2, true, None, None));
    assert_eq!(v.replays.len(), 1);
    assert_eq!(
        (v.replays[0].delivery_id, v.replays[0].previous_state.as_str(), v.replays[0].forced),
        (1, "delivered", true)
    );
    assert_eq!(v.conflicts.len(), 1);
    assert_eq!((v.conflicts[0].received_at, v.conflicts[0].content_hash.as_str()), (from_us(T0 + 9), "other"));

    let c = store.event("ev-c").await.unwrap().unwrap();
    assert_eq!(c.routing.as_str(), "not_routed");
    assert!(c.deliveries.is_empty() && c.attempts.is_empty() && c.replays.is_empty() && c.conflicts.is_empty());
    let d = store.event("ev-d").await.unwrap().unwrap();
    assert_eq!(d.deliveries[0].next_attempt_at, Some(from_us(T0 + 100)));
}

#[tokio::test]
async fn deliveries_filter_and_page() {
    let store = &pg().await;
    let all = store.deliveries(DeliveryFilter::default()).await.unwrap();
    assert_eq!(ids(&all), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let f = |state, destination: Option<&str>, event_id: Option<&str>, after, limit| DeliveryFilter {
        state,
        destination: destination.map(Into::into),
        event_id: event_id.map(Into::into),
        after,
        limit,
        recent: false,
        needs_person: false,
    };
    let get = |f: DeliveryFilter| async move { ids(&store.deliveries(f).await.unwrap()) };
    assert_eq!(get(f(Some(DeliveryState::Pending), None, None, None, None)).await, [4, 9]);
    assert_eq!(get(f(None, Some("ga4"), None, None, None)).await, [1, 4, 7, 9]);
    assert_eq!(get(f(None, None, Some("ev-d"), None, None)).await, [4, 5, 10]);
    assert_eq!(get(f(Some(DeliveryState::Delivered), Some("ga4"), Some("ev-f"), None, None)).await, [7]);
    assert_eq!(get(f(Some(DeliveryState::Dead), Some("ga4"), None, None, None)).await, Vec::<i64>::new());
    // What needs a person: dead, rejected and in doubt; `state` narrows it.
    let needs_person = |state| DeliveryFilter { needs_person: true, state, ..DeliveryFilter::default() };
    assert_eq!(get(needs_person(None)).await, [3, 6, 8, 10]);
    assert_eq!(get(needs_person(Some(DeliveryState::Rejected))).await, [6]);
    assert_eq!(get(needs_person(Some(DeliveryState::Delivered))).await, Vec::<i64>::new());
    // Paging: after the last id seen, in id order.
    assert_eq!(get(f(None, None, None, None, Some(4))).await, [1, 2, 3, 4]);
    assert_eq!(get(f(None, None, None, Some(4), Some(4))).await, [5, 6, 7, 8]);
    assert_eq!(get(f(None, None, None, Some(8), Some(4))).await, [9, 10]);
    assert_eq!(get(f(None, Some("ga4"), None, Some(1), Some(2))).await, [4, 7]);

    // 100 unless asked, at most 1000.
    sqlx::raw_sql(&format!(
        "INSERT INTO deliveries (id, event_id, destination, dest_event, browser_tracked, strip_personal, state, \
         created_at, updated_at) SELECT 100 + n, 'bulk-' || n, 'bulk', 'x', FALSE, FALSE, 'pending', {T0}, {T0} \
         FROM generate_series(1, 1100) AS n"
    ))
    .execute(store.pool())
    .await
    .unwrap();
    assert_eq!(get(f(None, Some("bulk"), None, None, None)).await.len(), 100);
    assert_eq!(get(f(None, Some("bulk"), None, None, Some(5000))).await.len(), 1000);
}

#[tokio::test]
async fn counts_and_queues() {
    let store = pg().await;
    let c = store.counts().await.unwrap();
    assert_eq!((c.events, c.routed, c.not_routed, c.conflicts), (7, 6, 1, 1));
    let s = |x: &str| x.parse::<DeliveryState>().unwrap();
    let row = |d: &str, st: &str, r: Option<&str>, n: u64| (d.to_owned(), s(st), r.map(str::to_owned), n);
    // Byte order, NULL reasons first, as SQLite sorts.
    assert_eq!(
        c.deliveries,
        [
            row("Zeta", "sending", None, 1),
            row("ga4", "delivered", Some("sent"), 2),
            row("ga4", "pending", None, 2),
            row("google_ads", "rejected", Some("platform_rejected"), 1),
            row("linkedin", "in_doubt", Some("crashed_while_sending"), 1),
            row("meta", "dead", None, 1),
            row("meta", "dead", Some("attempts_exhausted"), 1),
            row("meta", "skipped", Some("consent_denied"), 1),
        ]
    );
    let queues = vec![
        QueueStat { destination: "Zeta".into(), depth: 1, oldest: Some(from_us(T0 + 3)) },
        QueueStat { destination: "ga4".into(), depth: 2, oldest: Some(from_us(T0 + 2)) },
    ];
    assert_eq!(c.queues, queues);
    assert_eq!(store.queues().await.unwrap(), queues);

    let empty = testdb::fresh().await;
    let c = empty.counts().await.unwrap();
    assert_eq!((c.events, c.routed, c.not_routed, c.conflicts), (0, 0, 0, 0));
    assert!(c.deliveries.is_empty() && c.queues.is_empty());
}

#[tokio::test]
async fn receipts_filter_newest_first() {
    let store = &pg().await;
    let f = |source: Option<&str>, status: Option<&str>, limit| ReceiptFilter {
        source: source.map(Into::into),
        status: status.map(Into::into),
        limit,
    };
    let get = |f: ReceiptFilter| async move {
        store.receipts(f).await.unwrap().into_iter().map(|r| r.receipt_id).collect::<Vec<_>>()
    };
    // last_at descending, then the later row first.
    assert_eq!(get(f(None, None, 0)).await, ["m_1", "wh_1", "evt_2", "evt_1"]);
    assert_eq!(get(f(Some("stripe"), None, 0)).await, ["evt_2", "evt_1"]);
    assert_eq!(get(f(None, Some("mapped"), 0)).await, ["wh_1", "evt_1"]);
    assert_eq!(get(f(Some("stripe"), Some("mapped"), 0)).await, ["evt_1"]);
    assert_eq!(get(f(None, None, 2)).await, ["m_1", "wh_1"]);
    let r = store.receipts(f(None, Some("ignored"), 0)).await.unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(
        (r.source.as_str(), r.topic.as_str(), r.detail.as_deref(), r.times),
        ("stripe", "customer.created", None, 3)
    );
    assert_eq!((r.first_at, r.last_at), (from_us(T0), from_us(NEW)));
}

#[tokio::test]
async fn prune_removes_ended_events_and_keeps_dead_letters() {
    let store = pg().await;
    let p = store.prune(cutoff(), 100).await.unwrap();
    assert_eq!(
        p,
        Pruned {
            events: 3,
            deliveries: 3,
            attempts: 3,
            requests: 3,
            receipts: 1,
            aliases: 1,
            identities: 1,
            identity_captures: 1,
            request_bodies: 0
        }
    );
    for gone in ["ev-a", "ev-c", "ev-e"] {
        assert_eq!(store.event(gone).await.unwrap(), None, "{gone} ended before the cutoff");
    }
    for kept in ["ev-b", "ev-d", "ev-f", "ev-g"] {
        assert!(store.event(kept).await.unwrap().is_some(), "{kept} is kept");
    }
    let dead = store.event("ev-b").await.unwrap().unwrap();
    assert_eq!(dead.attempts[0].endpoint.as_deref(), Some("https://meta/send"), "the dead letter keeps its request");
    assert_eq!(dead.replays.len(), 1);
    let pool = store.pool();
    let left = |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await.unwrap() };
    assert_eq!(left("SELECT id FROM requests ORDER BY id").await, [2, 4, 6]);
    assert_eq!(left("SELECT id FROM attempts ORDER BY id").await, [3, 5]);
    assert_eq!(left("SELECT id FROM replays ORDER BY id").await, [2]);
    assert_eq!(left("SELECT count(*) FROM conflicts").await, [0]);
    assert_eq!(left("SELECT id FROM receipts ORDER BY id").await, [2, 3, 4]);
    assert_eq!(left("SELECT count(*) FROM subject_aliases WHERE alias = 'stripe:pi_2'").await, [1]);
    assert_eq!(left("SELECT count(*) FROM identities WHERE subject_id = '2'").await, [1]);
    assert_eq!(left("SELECT id FROM identity_captures").await, [2]);
    assert!(store.prune(cutoff(), 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn prune_works_in_batches_oldest_first() {
    let store = pg().await;
    let mut total = Pruned::default();
    let mut calls = 0;
    loop {
        let p = store.prune(cutoff(), 1).await.unwrap();
        if p.is_empty() {
            break;
        }
        assert!(p.events <= 1 && p.requests <= 1 && p.receipts <= 1, "one row of each per call: {p:?}");
        calls += 1;
        if calls == 1 {
            assert_eq!((p.events, p.deliveries, p.attempts), (1, 2, 2));
            assert_eq!(store.event("ev-a").await.unwrap(), None, "the first received goes first");
            assert!(store.event("ev-c").await.unwrap().is_some());
        }
        total.add(&p);
        assert!(calls < 10, "prune must run dry");
    }
    assert_eq!(calls, 3);
    assert_eq!((total.events, total.deliveries, total.attempts, total.requests), (3, 3, 3, 3));
}

/// A replay commits between the prune's choice of events and its lock on their deliveries: the
/// event that has a pending delivery again stays, with its history.
#[tokio::test]
async fn prune_keeps_an_event_whose_delivery_came_back() {
    let store = pg().await;
    let pool = store.pool().clone();
    let mut replay = pool.begin().await.unwrap();
    sqlx::query("UPDATE deliveries SET state = 'pending', reason = NULL WHERE id = 2")
        .execute(&mut *replay)
        .await
        .unwrap();
    let pruning = tokio::spawn({
        let pool = pool.clone();
        async move { super::prune(&pool, cutoff(), 100).await }
    });
    // The prune chose ev-a (the replay is not committed) and now waits for delivery 2's lock.
    let waiting =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'";
    for _ in 0..500 {
        if sqlx::query_scalar::<_, i64>(waiting).fetch_one(&pool).await.unwrap() > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!pruning.is_finished(), "the prune must be waiting for the replay's lock");
    replay.commit().await.unwrap();
    let p = pruning.await.unwrap().unwrap();
    assert_eq!((p.events, p.deliveries), (2, 1), "ev-c and ev-e only: {p:?}");
    let a = store.event("ev-a").await.unwrap().expect("ev-a has a pending delivery again");
    assert_eq!(a.deliveries[1].state, DeliveryState::Pending);
    assert_eq!((a.attempts.len(), a.replays.len(), a.conflicts.len()), (2, 1, 1));
}

#[tokio::test]
async fn next_due_is_the_earliest_pending_of_a_destination() {
    let store = pg().await;
    assert_eq!(store.next_due("ga4").await.unwrap(), Some(from_us(7)));
    assert_eq!(store.next_due("meta").await.unwrap(), None, "dead and skipped are not due");
    assert_eq!(store.next_due("nowhere").await.unwrap(), None);
    sqlx::query("UPDATE deliveries SET state = 'claimed' WHERE id = 9").execute(store.pool()).await.unwrap();
    assert_eq!(store.next_due("ga4").await.unwrap(), Some(from_us(T0 + 100)));
}

/// Both stores, same rows: same answers, before and after a prune.
#[tokio::test]
async fn answers_like_sqlite() {
    let pg = pg().await;
    let (_dir, lite) = sqlite();
    for id in ["ev-a", "ev-b", "ev-c", "ev-d", "ev-g", "none"] {
        assert_eq!(pg.event(id).await.unwrap(), lite.event(id).await.unwrap(), "event {id}");
    }
    let filters = [
        DeliveryFilter::default(),
        DeliveryFilter { state: Some(DeliveryState::Pending), ..Default::default() },
        DeliveryFilter { destination: Some("ga4".into()), after: Some(1), limit: Some(2), ..Default::default() },
        DeliveryFilter { recent: true, limit: Some(3), ..Default::default() },
    ];
    for f in filters {
        assert_eq!(pg.deliveries(f.clone()).await.unwrap(), lite.deliveries(f).await.unwrap());
    }
    assert_eq!(pg.counts().await.unwrap(), lite.counts().await.unwrap());
    let rf = ReceiptFilter { source: Some("stripe".into()), ..Default::default() };
    assert_eq!(pg.receipts(rf.clone()).await.unwrap(), lite.receipts(rf).await.unwrap());
    assert_eq!(pg.next_due("ga4").await.unwrap(), lite.next_due("ga4").await.unwrap());
    assert_eq!(pg.prune(cutoff(), 100).await.unwrap(), lite.prune(cutoff(), 100).await.unwrap());
    assert_eq!(pg.counts().await.unwrap(), lite.counts().await.unwrap());
}

#[test]
fn ended_states_agree() {
    let sql: Vec<String> = ENDED.iter().map(|s| format!("'{s}'")).collect();
    assert_eq!(PRUNABLE_STATES, format!("({})", sql.join(", ")));
    for s in ENDED {
        let st: DeliveryState = s.parse().unwrap();
        assert!(st.is_ended() && st != DeliveryState::Dead && st != DeliveryState::InDoubt);
    }
}
