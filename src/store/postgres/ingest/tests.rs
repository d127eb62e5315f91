//! Ingest writes on a fresh PostgreSQL database: dedupe, conflicts, the identity bridge,
//! planned deliveries, concurrent writers, captures, receipts and aliases.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use sqlx::PgPool;

use super::*;
use crate::core::delivery::reason;
use crate::core::plan::{ConsentPolicy, ConsentPurpose, OnPersonalDataDenied, Rules};
use crate::core::{ConsentState, EventId, IdentityCapture, Kind, Route, Subject};
use crate::store::postgres::{testdb, PgStore};
use crate::store::{Intake, Receipt, Store};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
}

/// `order_paid` for `order:<order>`, with no identity and consent not stated.
fn event(order: &str) -> Event {
    let subject = Subject { kind: "order".into(), id: order.into() };
    let kind = Kind::parse("order_paid").unwrap();
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
        identity: Identity::default(),
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: vec![],
    }
}

fn with_client(mut e: Event, client_id: &str) -> Event {
    e.identity.client_id = Some(client_id.into());
    e
}

/// Rules whose answers the test fixes: consent assumed, a 72 h window.
struct TestRules {
    needs_client_id: bool,
    messages: Vec<String>,
    policy: ConsentPolicy,
}

impl TestRules {
    fn new(needs_client_id: bool, messages: &[&str]) -> Self {
        Self {
            needs_client_id,
            messages: messages.iter().map(|m| (*m).to_owned()).collect(),
            policy: ConsentPolicy {
                purpose: ConsentPurpose::Analytics,
                on_personal_data_denied: OnPersonalDataDenied::Strip,
                assume_granted: true,
            },
        }
    }
}

impl Rules for TestRules {
    fn window(&self) -> Duration {
        Duration::hours(72)
    }
    fn identity_ok(&self, event: &Event) -> bool {
        !self.needs_client_id || event.identity.client_id.is_some()
    }
    fn validate(&self, _event: &Event, _route: &Route, _strip_personal: bool) -> Vec<String> {
        self.messages.clone()
    }
    fn dedupes_with_browser(&self) -> bool {
        false
    }
    fn dedupes_resend(&self, _event: &Event, _route: &Route) -> bool {
        false
    }
    fn consent_policy(&self) -> &ConsentPolicy {
        &self.policy
    }
}

/// `order_paid` goes to three destinations: `ga4` (needs a client id), `meta` (the browser
/// tracks it: skipped) and `strict` (refuses every payload: rejected).
fn planner() -> Arc<Planner> {
    let route = |browser_tracked| Route { event: "purchase".into(), browser_tracked, ..Route::default() };
    let mut catalog = BTreeMap::new();
    catalog.insert(
        "order_paid".to_owned(),
        vec![("ga4".to_owned(), route(false)), ("meta".to_owned(), route(true)), ("strict".to_owned(), route(false))],
    );
    let mut rules: BTreeMap<String, Arc<dyn Rules>> = BTreeMap::new();
    rules.insert("ga4".into(), Arc::new(TestRules::new(true, &[])));
    rules.insert("meta".into(), Arc::new(TestRules::new(false, &[])));
    rules.insert("strict".into(), Arc::new(TestRules::new(false, &["value must be a whole number"])));
    Arc::new(Planner::new(catalog, rules))
}

#[derive(Debug, PartialEq, sqlx::FromRow)]
struct DeliveryRow {
    destination: String,
    dest_event: String,
    browser_tracked: bool,
    strip_personal: bool,
    state: String,
    reason: Option<String>,
    messages: Option<String>,
    next_attempt_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    route: Option<String>,
    attempts: i32,
}

async fn deliveries(pool: &PgPool, event_id: &str) -> Vec<DeliveryRow> {
    sqlx::query_as(
        "SELECT destination, dest_event, browser_tracked, strip_personal, state, reason, messages, next_attempt_at, \
         created_at, updated_at, route, attempts FROM deliveries WHERE event_id = $1 ORDER BY id",
    )
    .bind(event_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The stored event: (content hash, routed, body).
async fn stored(pool: &PgPool, event_id: &str) -> Option<(String, bool, Event)> {
    let row: Option<(String, bool, String)> =
        sqlx::query_as("SELECT content_hash, routed, body FROM events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(pool)
            .await
            .unwrap();
    row.map(|(hash, routed, body)| (hash, routed, serde_json::from_str(&body).unwrap()))
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

fn statuses(results: &[IngestResult]) -> Vec<(&str, IngestStatus)> {
    results.iter().map(|r| (r.event_id.as_str(), r.status)).collect()
}

async fn capture(store: &PgStore, subject: Subject, identity: Identity, consent: Consent, at: DateTime<Utc>) {
    let capture = IdentityCapture { subject, captured_at: at, identity, consent, from_browser: false };
    store.intake(Intake::of_capture(Utc::now(), capture), planner()).await.unwrap();
}

/// Events alone through `Store::intake`: what became of each.
async fn ingest(store: &PgStore, events: Vec<Event>, planner: Arc<Planner>) -> Result<Vec<IngestResult>, StoreError> {
    store.intake(Intake::of_events(Utc::now(), events), planner).await.map(|r| r.events)
}

/// Receipts in a transaction of their own; per receipt, whether it was the first time.
async fn record_receipts(store: &PgStore, receipts: Vec<Receipt>) -> Vec<bool> {
    let mut tx = store.pool().begin().await.unwrap();
    let first = receipts_in(&mut tx, &receipts).await.unwrap();
    tx.commit().await.unwrap();
    first
}

async fn record_aliases(store: &PgStore, aliases: Vec<(String, Subject)>) -> Result<(), StoreError> {
    store.intake(Intake::of_aliases(Utc::now(), aliases), planner()).await.map(|_| ())
}

fn order(id: &str) -> Subject {
    Subject { kind: "order".into(), id: id.into() }
}

// ---- accepted, duplicate, conflict ----

#[tokio::test]
async fn a_new_event_is_stored_with_one_delivery_per_planned_destination() {
    let store = testdb::fresh().await;
    let e = with_client(event("1042"), "555.777");
    let results = ingest(&store, vec![e.clone()], planner()).await.unwrap();

    let planned = |destination: &str, state, reason| PlannedDelivery { destination: destination.into(), state, reason };
    assert_eq!(
        results,
        vec![IngestResult {
            event_id: "order:1042:order_paid".into(),
            status: IngestStatus::Accepted,
            deliveries: vec![
                planned("ga4", DeliveryState::Pending, None),
                planned("meta", DeliveryState::Skipped, Some(reason::BROWSER_TRACKED)),
                planned("strict", DeliveryState::Rejected, Some(reason::INVALID)),
            ],
        }]
    );
    let (hash, routed, body) = stored(store.pool(), "order:1042:order_paid").await.unwrap();
    assert_eq!(hash, e.content_hash());
    assert!(routed);
    assert_eq!(body, e);

    let at = to_us(now());
    let row =
        |destination: &str, browser_tracked, state: &str, reason: Option<&str>, messages: Option<&str>| DeliveryRow {
            destination: destination.into(),
            dest_event: "purchase".into(),
            browser_tracked,
            strip_personal: false,
            state: state.into(),
            reason: reason.map(str::to_owned),
            messages: messages.map(str::to_owned),
            next_attempt_at: (state == "pending").then_some(at),
            created_at: at,
            updated_at: at,
            route: Some(
                serde_json::to_string(&Route { event: "purchase".into(), browser_tracked, ..Route::default() })
                    .unwrap(),
            ),
            attempts: 0,
        };
    assert_eq!(
        deliveries(store.pool(), "order:1042:order_paid").await,
        vec![
            row("ga4", false, "pending", None, None),
            row("meta", true, "skipped", Some("browser_tracked"), None),
            row("strict", false, "rejected", Some("invalid"), Some(r#"["value must be a whole number"]"#)),
        ]
    );
}

#[tokio::test]
async fn an_unrouted_event_is_stored_without_deliveries() {
    let store = testdb::fresh().await;
    let mut e = event("7");
    e.kind = Kind::parse("lead_created").unwrap();
    e.event_id = EventId::derive(&e.subject, &e.kind);
    let results = ingest(&store, vec![e], planner()).await.unwrap();
    assert_eq!(statuses(&results), vec![("order:7:lead_created", IngestStatus::Accepted)]);
    assert!(results[0].deliveries.is_empty());
    let (_, routed, _) = stored(store.pool(), "order:7:lead_created").await.unwrap();
    assert!(!routed);
    assert_eq!(count(store.pool(), "SELECT count(*) FROM deliveries").await, 0);
}

#[tokio::test]
async fn a_redelivery_is_a_duplicate_and_a_restatement_a_conflict_that_keeps_the_original() {
    let store = testdb::fresh().await;
    let original = with_client(event("1042"), "555.777");
    ingest(&store, vec![original.clone()], planner()).await.unwrap();

    let mut again = original.clone();
    again.received_at = now() + Duration::minutes(5);
    let results = ingest(&store, vec![again], planner()).await.unwrap();
    assert_eq!(statuses(&results), vec![("order:1042:order_paid", IngestStatus::Duplicate)]);
    assert!(results[0].deliveries.is_empty());

    let mut restated = original.clone();
    restated.value = Some(99.0);
    restated.received_at = now() + Duration::minutes(9);
    let results = ingest(&store, vec![restated.clone()], planner()).await.unwrap();
    assert_eq!(statuses(&results), vec![("order:1042:order_paid", IngestStatus::Conflict)]);

    let (hash, _, body) = stored(store.pool(), "order:1042:order_paid").await.unwrap();
    assert_eq!((hash, body), (original.content_hash(), original), "the original stays");
    let conflicts: Vec<(String, i64, String, String)> =
        sqlx::query_as("SELECT event_id, received_at, content_hash, body FROM conflicts ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        conflicts,
        vec![(
            "order:1042:order_paid".to_owned(),
            to_us(restated.received_at),
            restated.content_hash(),
            serde_json::to_string(&restated).unwrap()
        )]
    );
    assert_eq!(count(store.pool(), "SELECT count(*) FROM events").await, 1);
    assert_eq!(count(store.pool(), "SELECT count(*) FROM deliveries").await, 3, "no deliveries for repeats");
}

#[tokio::test]
async fn a_batch_repeating_an_id_keeps_the_first_and_answers_in_input_order() {
    let store = testdb::fresh().await;
    let a = with_client(event("2"), "1.1");
    let mut a_restated = a.clone();
    a_restated.value = Some(1.0);
    let b = with_client(event("1"), "1.1");
    let results = ingest(&store, vec![a.clone(), b, a_restated, a.clone()], planner()).await.unwrap();
    assert_eq!(
        statuses(&results),
        vec![
            ("order:2:order_paid", IngestStatus::Accepted),
            ("order:1:order_paid", IngestStatus::Accepted),
            ("order:2:order_paid", IngestStatus::Conflict),
            ("order:2:order_paid", IngestStatus::Duplicate),
        ]
    );
    assert_eq!(results[0].deliveries.len(), 3);
    assert_eq!(stored(store.pool(), "order:2:order_paid").await.unwrap().2, a);
    assert_eq!(count(store.pool(), "SELECT count(*) FROM conflicts").await, 1);
    // Delivery ids follow the batch's order, not the order events were locked in.
    let destinations_by_id: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM deliveries WHERE destination = 'ga4' ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(destinations_by_id, vec!["order:2:order_paid", "order:1:order_paid"]);
}

// ---- the identity bridge ----

#[tokio::test]
async fn the_subject_entry_fills_what_the_event_lacks_and_the_plan_is_redone() {
    let store = testdb::fresh().await;
    let bridge =
        Identity { client_id: Some("555.777".into()), session_id: Some("bridge".into()), ..Identity::default() };
    let consent = Consent { analytics: Some(ConsentState::Granted), ..Consent::default() };
    capture(&store, order("1042"), bridge, consent, now() - Duration::hours(2)).await;

    let mut e = event("1042");
    e.identity.session_id = Some("own".into());
    let results = ingest(&store, vec![e], planner()).await.unwrap();
    // Without the bridge's client id, ga4 would have been skipped for no identity.
    assert_eq!(results[0].deliveries[0].state, DeliveryState::Pending);
    assert_eq!(deliveries(store.pool(), "order:1042:order_paid").await[0].state, "pending");

    let (hash, _, body) = stored(store.pool(), "order:1042:order_paid").await.unwrap();
    assert_eq!(body.identity.client_id.as_deref(), Some("555.777"));
    assert_eq!(body.identity.session_id.as_deref(), Some("own"), "what the event carries wins");
    assert_eq!(body.consent.analytics, Some(ConsentState::Granted));
    assert_eq!(body.joined, vec!["identity.client_id", "consent.analytics"]);
    let mut unjoined = body.clone();
    unjoined.identity.client_id = None;
    unjoined.consent.analytics = None;
    assert_eq!(hash, unjoined.content_hash(), "the hash is over what the source said");
}

#[tokio::test]
async fn the_user_entry_joins_after_the_subject_entry_named_the_user() {
    let store = testdb::fresh().await;
    let named = Identity { user_id: Some("u1".into()), ..Identity::default() };
    capture(&store, order("9"), named, Consent::default(), now()).await;
    let user = Identity { client_id: Some("8.8".into()), user_id: Some("u1".into()), ..Identity::default() };
    capture(&store, Subject { kind: "user".into(), id: "u1".into() }, user, Consent::default(), now()).await;

    let results = ingest(&store, vec![event("9"), event("10")], planner()).await.unwrap();
    assert_eq!(results[0].deliveries[0].state, DeliveryState::Pending);
    assert_eq!(results[1].deliveries[0].state, DeliveryState::Skipped, "order 10 names no user");
    let (_, _, body) = stored(store.pool(), "order:9:order_paid").await.unwrap();
    assert_eq!(body.identity.user_id.as_deref(), Some("u1"));
    assert_eq!(body.identity.client_id.as_deref(), Some("8.8"));
    assert_eq!(body.joined, vec!["identity.user_id", "identity.client_id"]);
}

// ---- concurrent writers ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_batches_from_two_tasks_store_each_event_once() {
    let store = Arc::new(testdb::fresh().await);
    for round in 0..4 {
        let batch = |ids: Vec<u32>| -> Vec<Event> {
            ids.into_iter().map(|i| with_client(event(&format!("{round}-{i:03}")), "1.1")).collect()
        };
        // Opposite orders over the shared ids: locking in input order would deadlock.
        let first = batch((0..60).collect());
        let second = batch((30..90).rev().collect());
        let (s1, s2, p) = (store.clone(), store.clone(), planner());
        let t1 = tokio::spawn({
            let p = p.clone();
            async move { ingest(&s1, first, p).await }
        });
        let t2 = tokio::spawn(async move { ingest(&s2, second, p).await });
        let (r1, r2) = (t1.await.unwrap().unwrap(), t2.await.unwrap().unwrap());

        assert_eq!(r1.len(), 60);
        assert_eq!(r2.len(), 60);
        assert_eq!(r1[0].event_id, format!("order:{round}-000:order_paid"), "input order");
        assert_eq!(r2[0].event_id, format!("order:{round}-089:order_paid"), "input order");
        let mut status: BTreeMap<&str, Vec<IngestStatus>> = BTreeMap::new();
        for r in r1.iter().chain(&r2) {
            status.entry(&r.event_id).or_default().push(r.status);
        }
        assert_eq!(status.len(), 90);
        for (id, s) in status {
            let accepted = s.iter().filter(|s| **s == IngestStatus::Accepted).count();
            let duplicates = s.iter().filter(|s| **s == IngestStatus::Duplicate).count();
            assert_eq!((accepted, duplicates, s.len() - accepted - duplicates), (1, s.len() - 1, 0), "{id}: {s:?}");
        }
    }
    assert_eq!(count(store.pool(), "SELECT count(*) FROM events").await, 4 * 90);
    assert_eq!(count(store.pool(), "SELECT count(DISTINCT event_id) FROM events").await, 4 * 90);
    assert_eq!(count(store.pool(), "SELECT count(*) FROM deliveries").await, 4 * 90 * 3);
    assert_eq!(count(store.pool(), "SELECT count(*) FROM conflicts").await, 0);
}

// ---- identity captures ----

#[tokio::test]
async fn a_capture_replaces_the_fields_it_states_and_is_kept_as_history() {
    let store = testdb::fresh().await;
    let granted = Some(ConsentState::Granted);
    let first = Identity { client_id: Some("c1".into()), session_id: Some("s1".into()), ..Identity::default() };
    capture(&store, order("5"), first, Consent { analytics: granted, ..Consent::default() }, now()).await;
    let second = Identity { client_id: Some("c2".into()), user_id: Some("u5".into()), ..Identity::default() };
    let denied = Consent { ad_user_data: Some(ConsentState::Denied), ..Consent::default() };
    capture(&store, order("5"), second.clone(), denied.clone(), now() - Duration::hours(1)).await;

    let (identity, consent, captured_at): (String, String, i64) = sqlx::query_as(
        "SELECT identity, consent, captured_at FROM identities WHERE subject_type = 'order' AND subject_id = '5'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let identity: Identity = serde_json::from_str(&identity).unwrap();
    let consent: Consent = serde_json::from_str(&consent).unwrap();
    assert_eq!(
        identity,
        Identity {
            client_id: Some("c2".into()),
            session_id: Some("s1".into()),
            user_id: Some("u5".into()),
            ..Identity::default()
        }
    );
    assert_eq!(consent, Consent { analytics: granted, ad_user_data: Some(ConsentState::Denied), ..Consent::default() });
    assert_eq!(captured_at, to_us(now()), "an older capture does not move captured_at back");

    let history: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT captured_at, identity, consent FROM identity_captures ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        history[1],
        (
            to_us(now() - Duration::hours(1)),
            serde_json::to_string(&second).unwrap(),
            serde_json::to_string(&denied).unwrap()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_captures_of_one_subject_lose_no_field() {
    let store = Arc::new(testdb::fresh().await);
    let granted = Some(ConsentState::Granted);
    let captures: Vec<(Identity, Consent)> = vec![
        (Identity { client_id: Some("c".into()), ..Identity::default() }, Consent::default()),
        (Identity { session_id: Some("s".into()), ..Identity::default() }, Consent::default()),
        (Identity { user_id: Some("u".into()), ..Identity::default() }, Consent::default()),
        (Identity::default(), Consent { analytics: granted, ..Consent::default() }),
        (Identity::default(), Consent { ad_user_data: granted, ..Consent::default() }),
        (Identity::default(), Consent { ad_personalization: granted, ..Consent::default() }),
    ];
    let subjects: Vec<String> = (0..8).map(|i| format!("race-{i}")).collect();
    let mut tasks = Vec::new();
    for (identity, consent) in captures {
        let (store, subjects) = (store.clone(), subjects.clone());
        tasks.push(tokio::spawn(async move {
            for s in subjects {
                capture(&store, order(&s), identity.clone(), consent.clone(), now()).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT identity, consent FROM identities ORDER BY subject_id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(rows.len(), subjects.len());
    for (identity, consent) in rows {
        let identity: Identity = serde_json::from_str(&identity).unwrap();
        let consent: Consent = serde_json::from_str(&consent).unwrap();
        assert_eq!(
            (identity.client_id.as_deref(), identity.session_id.as_deref(), identity.user_id.as_deref()),
            (Some("c"), Some("s"), Some("u"))
        );
        assert_eq!(consent, Consent { analytics: granted, ad_user_data: granted, ad_personalization: granted });
    }
    assert_eq!(count(store.pool(), "SELECT count(*) FROM identity_captures").await, 6 * 8);
}

// ---- receipts and aliases ----

fn receipt(id: &str, at: DateTime<Utc>) -> Receipt {
    Receipt {
        source: "stripe".into(),
        receipt_id: id.into(),
        topic: "payment_intent.succeeded".into(),
        status: crate::store::ReceiptStatus::Mapped,
        detail: Some("order:1042:order_paid".into()),
        at,
    }
}

#[tokio::test]
async fn receipts_are_new_once_and_redeliveries_are_counted() {
    let store = testdb::fresh().await;
    let first =
        record_receipts(&store, vec![receipt("evt_2", now()), receipt("evt_1", now()), receipt("evt_2", now())]).await;
    assert_eq!(first, vec![true, true, false]);
    let later = now() + Duration::minutes(3);
    assert_eq!(record_receipts(&store, vec![receipt("evt_2", later)]).await, vec![false]);

    let rows: Vec<(String, i64, i64, i64)> =
        sqlx::query_as("SELECT receipt_id, first_at, last_at, times FROM receipts ORDER BY receipt_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        vec![("evt_1".to_owned(), to_us(now()), to_us(now()), 1), ("evt_2".to_owned(), to_us(now()), to_us(later), 3)]
    );
    let described: (String, String, Option<String>) =
        sqlx::query_as("SELECT topic, status, detail FROM receipts WHERE receipt_id = 'evt_1'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(
        described,
        ("payment_intent.succeeded".to_owned(), "mapped".to_owned(), Some("order:1042:order_paid".to_owned()))
    );
}

#[tokio::test]
async fn the_first_alias_stays() {
    let store = testdb::fresh().await;
    record_aliases(&store, vec![("stripe:pi_1".into(), order("1")), ("stripe:pi_1".into(), order("2"))]).await.unwrap();
    record_aliases(&store, vec![("stripe:pi_1".into(), order("3")), ("stripe:pi_2".into(), order("4"))]).await.unwrap();
    assert_eq!(store.resolve_alias("stripe:pi_1").await.unwrap(), Some(order("1")));
    assert_eq!(store.resolve_alias("stripe:pi_2").await.unwrap(), Some(order("4")));
    assert_eq!(store.resolve_alias("stripe:pi_3").await.unwrap(), None);
}
