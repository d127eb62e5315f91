//! `Store::subject_history` on both stores: a subject's events with a delivery to one
//! destination, in event-time order whatever the arrival order, with each one's destination event.

use std::io::Write;
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::json;

use crate::config::Config;
use crate::core::plan::Planner;
use crate::core::Subject;
use crate::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON;
use crate::store::{Intake, Store};

fn config(dir: &tempfile::TempDir) -> Config {
    let key = dir.path().join("key.json");
    std::fs::File::create(&key).unwrap().write_all(TEST_SERVICE_ACCOUNT_JSON.as_bytes()).unwrap();
    let q = |s: String| toml::Value::String(s).to_string();
    let toml = format!(
        "[storage]\nurl = {db}\n\n[[destinations]]\nname = \"gads\"\ntype = \"google_ads\"\n\
         customer_id = \"123-456-7890\"\nservice_account_key = {key}\n\n\
         [catalog.order_paid]\ngads = {{ event = \"111\" }}\n[catalog.refund_completed]\ngads = {{ event = \"111\" }}\n\
         [catalog.lead_qualified]\ngads = {{ event = \"222\" }}\n",
        db = q(format!("sqlite://{}", dir.path().join("ledger.db").display())),
        key = q(format!("file:{}", key.display())),
    );
    Config::from_toml(&toml).unwrap()
}

/// Ingests, one at a time and out of event-time order, an order, two refunds, another order's
/// refund and an unrouted kind; then reads the order's history.
async fn history_of(store: Arc<dyn Store>, planner: Arc<Planner>) -> Vec<(String, String)> {
    let now = Utc::now();
    let event = |id: &str, kind: &str, order: &str, hours_ago: i64| {
        let body = json!({
            "event_id": id, "kind": kind, "occurred_at": (now - Duration::hours(hours_ago)).to_rfc3339(),
            "subject": {"type": "order", "id": order}, "value": 9.9, "currency": "EUR",
            "identity": {"gclid": "Cj0-x"}, "consent": {"ad_user_data": "granted"},
        });
        crate::ingest::canonical::parse_event(body, "api", now, "").unwrap()
    };
    for e in [
        event("re_2", "refund_completed", "1042", 2),
        event("paid", "order_paid", "1042", 10),
        event("re_1", "refund_completed", "1042", 5),
        event("other", "refund_completed", "1043", 4),
        event("unrouted", "order_shipped", "1042", 3),
    ] {
        store.intake(Intake::of_events(Utc::now(), vec![e]), planner.clone()).await.unwrap();
    }
    let subject = Subject { kind: "order".into(), id: "1042".into() };
    let history = store.subject_history(&subject, "gads").await.unwrap();
    assert!(store.subject_history(&subject, "elsewhere").await.unwrap().is_empty());
    history.into_iter().map(|(e, action)| (e.event_id.as_str().to_owned(), action)).collect()
}

fn expected() -> Vec<(String, String)> {
    ["paid", "re_1", "re_2"].iter().map(|id| ((*id).to_owned(), "111".to_owned())).collect()
}

#[tokio::test]
async fn sqlite_reads_a_subjects_history_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir);
    let store: Arc<dyn Store> = crate::store::open_sqlite(&config).unwrap();
    let planner = Arc::new(crate::delivery::planner(&config, &crate::platforms::build(&config.destinations).unwrap()));
    assert_eq!(history_of(store, planner).await, expected());
}

#[tokio::test]
async fn postgres_reads_a_subjects_history_in_event_time_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir);
    let store: Arc<dyn Store> = Arc::new(crate::store::postgres::testdb::fresh().await);
    let planner = Arc::new(crate::delivery::planner(&config, &crate::platforms::build(&config.destinations).unwrap()));
    assert_eq!(history_of(store, planner).await, expected());
}
