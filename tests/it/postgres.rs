//! The PostgreSQL ledger: the same promises as on SQLite, and what only a shared ledger adds —
//! several Surety processes on one database deliver each event exactly once, and the leases of a
//! process that died are taken back by the others.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::{postgres_ledger, purchase, TestServer};

#[tokio::test]
async fn a_postgres_ledger_ingests_dedupes_and_delivers() {
    let url = postgres_ledger().await;
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let s = TestServer::start_postgres(ga4, &url, "", |t| t).await;

    let e = purchase("pg1", 1);
    let r = s.post("/v1/events", &e).await;
    assert_eq!(r.status(), 202);
    let again = s.post("/v1/events", &e).await;
    assert_eq!(again.status(), 200, "a redelivery is a duplicate");
    let mut changed = e.clone();
    changed["value"] = json!(1.0);
    assert_eq!(s.post("/v1/events", &changed).await.status(), 409);
    assert_eq!(s.settled("order:pg1:order_paid").await, ["ga4-web:delivered:sent"]);

    let v = s.event("order:pg1:order_paid").await;
    assert_eq!(v["event"]["value"], 59.9, "the original stands");
    assert_eq!(v["conflicts"].as_array().unwrap().len(), 1);
    assert_eq!(v["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(v["attempts"][0]["http_status"], 204);
    assert_eq!(s.ga4.received_events().len(), 1);
    let c = s.counts().await;
    assert_eq!((c.events, c.conflicts), (1, 1));
    // The console's charts read the same ledger: one delivered, nothing else.
    let hours: Value = s.get_admin("/v1/deliveries/over-time").await.json().await.unwrap();
    let counts = hours["counts"].as_array().unwrap();
    let sum = |k: &str| counts.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("delivered"), sum("retried"), sum("failed")), (1, 0, 0), "{hours}");
}

/// Two processes, one PostgreSQL ledger, one platform: events posted to either are each sent
/// exactly once, by whichever process claimed them.
#[tokio::test]
async fn two_processes_on_one_postgres_ledger_send_each_event_once() {
    let url = postgres_ledger().await;
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let a = Arc::new(TestServer::start_postgres(ga4.clone(), &url, "", |t| t).await);
    let b = Arc::new(TestServer::start_postgres(ga4.clone(), &url, "", |t| t).await);

    const ORDERS: usize = 400;
    let mut posts = Vec::new();
    for n in 0..ORDERS {
        let event = purchase(&format!("shared{n}"), 1);
        let server = if n % 2 == 0 { a.clone() } else { b.clone() };
        let e = event.clone();
        posts.push(tokio::spawn(async move {
            let r = server.post("/v1/events", &e).await;
            assert!(r.status().is_success(), "{}", r.status());
        }));
        // Half the orders are posted to both processes at once: the ledger dedupes across them.
        if n % 2 == 0 {
            let other = b.clone();
            posts.push(tokio::spawn(async move {
                let r = other.post("/v1/events", &event).await;
                assert!(r.status().is_success(), "{}", r.status());
            }));
        }
    }
    for p in posts {
        p.await.unwrap();
    }
    for n in 0..ORDERS {
        assert_eq!(a.settled(&format!("order:shared{n}:order_paid")).await, ["ga4-web:delivered:sent"]);
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for e in ga4.received_events() {
        let id = e.params.get("transaction_id").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        *seen.entry(id).or_default() += 1;
    }
    assert_eq!(seen.len(), ORDERS, "every order reached the platform");
    assert!(
        seen.values().all(|&n| n == 1),
        "none twice: {:?}",
        seen.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let c = a.counts().await;
    assert_eq!(c.events, ORDERS as u64);
    let delivered: u64 = c.deliveries.iter().filter(|d| d.1.as_str() == "delivered").map(|d| d.3).sum();
    assert_eq!(delivered, ORDERS as u64);
}

/// A process claimed deliveries and died before sending them; a live process sharing the ledger
/// takes them over once the lease has run out, and sends each once.
#[tokio::test]
async fn a_dead_process_lease_is_taken_over_by_a_live_one() {
    let url = postgres_ledger().await;
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    crate::support::init_env();
    let config = surety::config::Config::from_toml(
        &crate::support::config_toml(std::path::Path::new("unused.db"), &ga4.base_url, "")
            .replace("url = \"sqlite://unused.db\"", &format!("url = \"{url}\"")),
    )
    .unwrap();
    let ledger = surety::store::open(&config).await.unwrap();
    let destinations = surety::platforms::build(&config.destinations).unwrap();
    let planner = Arc::new(surety::delivery::planner(&config, &destinations));
    let mut e = purchase("orphan", 1);
    e["event_id"] = json!("orphan-1");
    let now = chrono::Utc::now();
    let event = surety::ingest::canonical::parse_event(e, "api", now, "").unwrap();
    ledger.intake(surety::store::Intake::of_events(now, vec![event]), planner).await.unwrap();
    let lease = std::time::Duration::from_secs(1);
    let claimed = ledger.claim("ga4-web", 10, lease, "process-that-dies", chrono::Utc::now()).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // The claimer is gone; its lease runs out.
    tokio::time::sleep(lease + std::time::Duration::from_millis(200)).await;

    let s = TestServer::start_postgres(ga4, &url, "", |t| t.replace("lease_secs = 30", "lease_secs = 1")).await;
    assert_eq!(s.settled("orphan-1").await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.ga4.received_events().len(), 1);
}
