//! Identity that arrives after the event: a webhook (or API event) that beats the browser's
//! identity capture waits, pending `awaiting_identity`, and is sent with the captured identity
//! once the capture comes; without one it ends `skipped:no_identity` when the wait is over; the
//! wait survives a restart. Each on SQLite and on PostgreSQL.

use serde_json::{json, Value};

use crate::support::{eventually, postgres_ledger, TestServer};

const ID: &str = "order:late1:order_paid";

/// A server whose GA4 destination waits `wait_secs` for identity, on SQLite or on a fresh
/// PostgreSQL ledger.
async fn start(postgres: bool, wait_secs: u64) -> TestServer {
    let ga4 = surety::platforms::ga4::sim::start().await.expect("start GA4 simulator");
    restart(postgres.then(String::new), ga4, tempfile::tempdir().expect("temp dir"), wait_secs).await
}

/// Starts on `postgres` (a ledger URL; empty: a fresh one) or on SQLite in `dir`.
async fn restart(
    postgres: Option<String>,
    ga4: surety::platforms::ga4::sim::Ga4Sim,
    dir: tempfile::TempDir,
    wait_secs: u64,
) -> TestServer {
    let wait = format!("identity_wait_secs = {wait_secs}");
    match postgres {
        Some(url) => {
            let url = if url.is_empty() { postgres_ledger().await } else { url };
            TestServer::start_postgres(ga4, &url, "", |t| t.replace("identity_wait_secs = 0", &wait)).await
        }
        None => TestServer::start_custom(dir, ga4, &wait, "").await,
    }
}

/// A paid order as the payment webhook knows it: no browser identity, consent not stated.
fn webhook_order() -> Value {
    json!({
        "kind": "order_paid",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "subject": {"type": "order", "id": "late1"},
        "value": 59.9, "currency": "EUR",
        "items": [{"id": "SKU-1", "name": "Linen shirt", "price": 59.9, "quantity": 1}],
        "identity": {"email": "jane.doe@example.com"}
    })
}

/// What the browser captures at checkout.
fn browser_capture(subject_type: &str, subject_id: &str) -> Value {
    json!({
        "subject": {"type": subject_type, "id": subject_id},
        "identity": {"client_id": "555.1700000000", "session_id": "1700000123"},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    })
}

async fn awaiting(s: &TestServer) {
    assert_eq!(s.delivery_states(ID).await, ["ga4-web:pending:awaiting_identity"]);
    let v = s.event(ID).await;
    assert!(v["deliveries"][0]["next_attempt_at"].is_string(), "the timeline shows when the wait ends: {v}");
    let c = s.counts().await;
    let pending: u64 = c.deliveries.iter().filter(|d| d.1.as_str() == "pending").map(|d| d.3).sum();
    assert_eq!(pending, 1, "a waiting delivery counts as pending: {:?}", c.deliveries);
}

/// The GA4 simulator got the order once, with the captured client and session.
fn sent_with_captured_identity(s: &TestServer) {
    let got = s.ga4.events_named("purchase");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].client_id.as_deref(), Some("555.1700000000"));
    assert_eq!(got[0].params.get("session_id"), Some(&json!("1700000123")));
}

async fn webhook_first_then_capture(postgres: bool) {
    let s = start(postgres, 600).await;
    let r = s.post("/v1/events", &webhook_order()).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["deliveries"][0]["reason"], "awaiting_identity", "{body}");
    awaiting(&s).await;
    assert_eq!(s.ga4.request_count(), 0, "nothing is sent without the identity");

    let r = s.post("/v1/identities", &browser_capture("order", "late1")).await;
    assert_eq!(r.status(), 202);
    assert_eq!(s.settled(ID).await, ["ga4-web:delivered:sent"]);
    sent_with_captured_identity(&s);
    let v = s.event(ID).await;
    let joined: Vec<&str> = v["event"]["joined"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(joined.contains(&"identity.client_id") && joined.contains(&"consent.analytics"), "{joined:?}");
    let outcomes: Vec<&str> = v["attempts"].as_array().unwrap().iter().filter_map(|a| a["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["identity_joined", "delivered"], "the timeline shows the wait ending");

    // A capture after the send changes nothing already sent.
    let mut later = browser_capture("order", "late1");
    later["identity"]["client_id"] = json!("999.1800000000");
    assert_eq!(s.post("/v1/identities", &later).await.status(), 202);
    assert_eq!(s.delivery_states(ID).await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.event(ID).await["event"]["identity"]["client_id"], "555.1700000000");
    assert_eq!(s.ga4.events_named("purchase").len(), 1);
}

#[tokio::test]
async fn a_capture_after_the_event_is_joined_and_sent_on_sqlite() {
    webhook_first_then_capture(false).await;
}

#[tokio::test]
async fn a_capture_after_the_event_is_joined_and_sent_on_postgres() {
    webhook_first_then_capture(true).await;
}

async fn capture_through_an_alias(postgres: bool) {
    let s = start(postgres, 600).await;
    assert_eq!(s.post("/v1/events", &webhook_order()).await.status(), 202);
    awaiting(&s).await;
    // The order's payment is known as `stripe:pi_late1` (as a Stripe webhook records it).
    surety_alias(&s, "stripe:pi_late1").await;
    assert_eq!(s.post("/v1/identities", &browser_capture("stripe", "pi_late1")).await.status(), 202);
    assert_eq!(s.settled(ID).await, ["ga4-web:delivered:sent"]);
    sent_with_captured_identity(&s);
}

/// Records `alias` → `order:late1` in the server's ledger.
async fn surety_alias(s: &TestServer, alias: &str) {
    use surety::store::Store;
    let subject = surety::core::Subject { kind: "order".into(), id: "late1".into() };
    let aliases = surety::store::Intake::of_aliases(chrono::Utc::now(), vec![(alias.into(), subject)]);
    let planner = std::sync::Arc::new(surety::core::plan::Planner::default());
    match &s.postgres {
        Some(url) => {
            let store = surety::store::postgres::PgStore::connect(url).await.unwrap();
            store.intake(aliases, planner).await.unwrap();
        }
        None => {
            // One serving process holds the SQLite writer; a second store on the file is fine
            // for one short write (WAL, busy timeout).
            let store = surety::store::sqlite::SqliteStore::open(&s.db, surety::store::sqlite::Synchronous::Normal)
                .expect("open the ledger");
            store.intake(aliases, planner).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_capture_for_an_alias_of_the_subject_is_joined_on_sqlite() {
    capture_through_an_alias(false).await;
}

#[tokio::test]
async fn a_capture_for_an_alias_of_the_subject_is_joined_on_postgres() {
    capture_through_an_alias(true).await;
}

async fn no_capture_ends_no_identity(postgres: bool) {
    let s = start(postgres, 1).await;
    assert_eq!(s.post("/v1/events", &webhook_order()).await.status(), 202);
    assert_eq!(s.settled(ID).await, ["ga4-web:skipped:no_identity"]);
    assert_eq!(s.ga4.request_count(), 0, "never sent without identity");
    // Too late: the capture changes nothing.
    assert_eq!(s.post("/v1/identities", &browser_capture("order", "late1")).await.status(), 202);
    assert_eq!(s.delivery_states(ID).await, ["ga4-web:skipped:no_identity"]);
    let c = s.counts().await;
    assert_eq!(
        c.deliveries.iter().map(|d| (d.1.as_str(), d.2.as_deref(), d.3)).collect::<Vec<_>>(),
        [("skipped", Some("no_identity"), 1)]
    );
}

#[tokio::test]
async fn without_a_capture_the_wait_ends_skipped_no_identity_on_sqlite() {
    no_capture_ends_no_identity(false).await;
}

#[tokio::test]
async fn without_a_capture_the_wait_ends_skipped_no_identity_on_postgres() {
    no_capture_ends_no_identity(true).await;
}

async fn a_restart_during_the_wait_loses_nothing(postgres: bool) {
    let s = start(postgres, 600).await;
    assert_eq!(s.post("/v1/events", &webhook_order()).await.status(), 202);
    awaiting(&s).await;
    let url = s.postgres.clone();
    let (dir, ga4) = s.stop().await;

    let s = restart(url, ga4, dir, 600).await;
    awaiting(&s).await;
    assert_eq!(s.post("/v1/identities", &browser_capture("order", "late1")).await.status(), 202);
    assert_eq!(s.settled(ID).await, ["ga4-web:delivered:sent"]);
    sent_with_captured_identity(&s);
    eventually("counts add up", || async {
        let c = s.counts().await;
        c.deliveries.iter().map(|d| (d.1.as_str(), d.3)).collect::<Vec<_>>() == [("delivered", 1)]
    })
    .await;
}

#[tokio::test]
async fn a_restart_during_the_wait_loses_nothing_on_sqlite() {
    a_restart_during_the_wait_loses_nothing(false).await;
}

#[tokio::test]
async fn a_restart_during_the_wait_loses_nothing_on_postgres() {
    a_restart_during_the_wait_loses_nothing(true).await;
}
