//! People settle what is in doubt: a person who checked the platform ends a dead, rejected or
//! in_doubt delivery as delivered or not, sending nothing; the settlement is on the timeline
//! with who, when and why, counted apart (`settled_by_person`), and only a forced replay sends
//! it again. The dead-letter list shows everything that needs a person.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use surety::config::Config;
use surety::sim::Fault;
use surety::store::sqlite::{SqliteStore, Synchronous};
use surety::store::{Intake, Store};

use crate::support::{config_toml, init_env, purchase, TestServer};

fn surety(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_surety"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("USER", "dana")
        .output()
        .expect("run surety")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A SQLite ledger in `dir` holding a refund of `order` whose send was cut short by a crash:
/// claimed, marked sending, then taken back at start-up. GA4 does not dedupe refunds, so it is
/// left in doubt (as `crash::crash_while_sending_resends_only_what_ga4_dedupes` shows with a
/// real kill). Returns the event id.
async fn ledger_with_a_refund_in_doubt(dir: &std::path::Path, ga4_base: &str, order: &str) -> String {
    init_env();
    let db = dir.join("surety.db");
    let config = Config::from_toml(&config_toml(&db, ga4_base, "")).expect("config");
    let store = SqliteStore::open(&db, Synchronous::Normal).expect("open ledger");
    let planner =
        Arc::new(surety::delivery::planner(&config, &surety::platforms::build(&config.destinations).unwrap()));
    let mut refund = purchase(order, 1);
    refund["kind"] = json!("refund_completed");
    let now = chrono::Utc::now();
    let event = surety::ingest::canonical::parse_event(refund, "api", now, "").expect("a valid event");
    let id = event.event_id.as_str().to_owned();
    store.intake(Intake::of_events(now, vec![event]), planner.clone()).await.expect("ingest");
    let claimed = store.claim("ga4-web", 10, Duration::from_secs(30), "crashed", now).await.expect("claim");
    let ids: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
    assert_eq!(ids.len(), 1);
    store.mark_sending(&ids, "crashed", now).await.expect("sending");
    let recovered = store.recover(planner, true, now).await.expect("recover");
    assert_eq!(recovered.in_doubt, 1);
    id
}

/// A purchase that GA4 answered 500 to until attempts ran out: dead. Returns its delivery id.
async fn dead_purchase(s: &TestServer, order: &str) -> i64 {
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase(order, 1)).await.status(), 202);
    let id = format!("order:{order}:order_paid");
    assert_eq!(s.settled(&id).await, ["ga4-web:dead:attempts_exhausted"]);
    s.ga4.set_fault(None);
    delivery_id(s, &id).await
}

async fn delivery_id(s: &TestServer, event_id: &str) -> i64 {
    s.event(event_id).await["deliveries"][0]["id"].as_i64().expect("delivery id")
}

/// Posts a fresh purchase and waits until it is delivered: the worker has run since.
async fn worker_has_run(s: &TestServer, order: &str) {
    assert_eq!(s.post("/v1/events", &purchase(order, 1)).await.status(), 202);
    assert_eq!(s.settled(&format!("order:{order}:order_paid")).await, ["ga4-web:delivered:sent"]);
}

#[tokio::test]
async fn api_settles_in_doubt_and_dead_deliveries_without_sending_them() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refund = ledger_with_a_refund_in_doubt(dir.path(), &ga4.base_url, "doubt1").await;
    let s = TestServer::start_sqlite_in(dir, ga4, "").await;
    assert_eq!(s.settled(&refund).await, ["ga4-web:in_doubt:crashed_while_sending"]);
    let doubt = delivery_id(&s, &refund).await;
    let dead = dead_purchase(&s, "dead1").await;
    let sent_before = s.ga4.received_events().len();

    let r = s
        .post_admin("/v1/deliveries/settle", &json!({"id": doubt, "as": "delivered", "note": "seen in GA4 DebugView"}))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["state"].as_str(), body["reason"].as_str()), (Some("delivered"), Some("settled_by_person")));
    assert_eq!(body["settlement"]["by"], "admin token #1", "who: the token's place, never the token");
    let r = s.post_admin("/v1/deliveries/settle", &json!({"id": dead, "as": "not_delivered"})).await;
    assert_eq!(r.status(), 200);

    assert_eq!(s.delivery_states(&refund).await, ["ga4-web:delivered:settled_by_person"]);
    assert_eq!(s.delivery_states("order:dead1:order_paid").await, ["ga4-web:skipped:settled_by_person"]);
    // The timeline says who, when and why.
    let v = s.event(&refund).await;
    let st = &v["settlements"][0];
    assert_eq!(st["delivery_id"], doubt);
    assert_eq!(st["settled_as"], "delivered");
    assert_eq!(st["by"], "admin token #1");
    assert_eq!(st["note"], "seen in GA4 DebugView");
    assert_eq!(
        (st["previous_state"].as_str(), st["previous_reason"].as_str()),
        (Some("in_doubt"), Some("crashed_while_sending"))
    );
    assert!(st["at"].as_str().is_some_and(|t| t.parse::<chrono::DateTime<chrono::Utc>>().is_ok()), "{st}");
    let page = s
        .http
        .get(s.url(&format!("/?event={}", crate::support::urlencode(&refund))))
        .basic_auth("admin", Some(crate::support::ADMIN_TOKEN))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("settled as delivered by admin token #1"), "{page}");
    assert!(page.contains("seen in GA4 DebugView"), "{page}");

    // Counted apart, and the counts still add up.
    let c = s.counts().await;
    let n = |state: &str, reason: &str| {
        c.deliveries
            .iter()
            .filter(|(_, st, r, _)| st.as_str() == state && r.as_deref() == Some(reason))
            .map(|(.., n)| n)
            .sum::<u64>()
    };
    assert_eq!((n("delivered", "settled_by_person"), n("skipped", "settled_by_person")), (1, 1));
    let metrics = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(
            r#"surety_deliveries_total{destination="ga4-web",state="delivered",reason="settled_by_person"} 1"#
        ),
        "{metrics}"
    );

    // Neither is sent by the worker, nor by a plain replay; a forced replay sends them.
    worker_has_run(&s, "after1").await;
    assert_eq!(s.ga4.received_events().len(), sent_before + 1, "only the new purchase was sent");
    let r = s.post_admin("/v1/deliveries/replay", &json!({"delivery_ids": [doubt, dead]})).await;
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["replayed"], json!([]));
    assert_eq!(report["refused"].as_array().unwrap().len(), 2);
    assert!(report["refused"][0]["reason"].as_str().unwrap().contains("settled by a person"), "{report}");
    worker_has_run(&s, "after2").await;
    assert_eq!(s.ga4.received_events().len(), sent_before + 2);

    let r = s.post_admin("/v1/deliveries/replay", &json!({"delivery_ids": [doubt, dead], "force": true})).await;
    assert_eq!(r.json::<Value>().await.unwrap()["replayed"], json!([doubt, dead]));
    assert_eq!(s.settled(&refund).await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.settled("order:dead1:order_paid").await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.ga4.events_named("refund").len(), 1, "the forced replay sent the refund");
}

/// On whichever ledger the suite runs (`SURETY_IT_LEDGER=postgres` too).
#[tokio::test]
async fn api_settles_a_dead_delivery_once_and_refuses_what_needs_no_person() {
    let s = TestServer::start().await;
    let dead = dead_purchase(&s, "dead0").await;
    let settle = json!({"id": dead, "as": "not_delivered", "note": "order was cancelled"});
    assert_eq!(s.post_admin("/v1/deliveries/settle", &settle).await.status(), 200);
    assert_eq!(s.delivery_states("order:dead0:order_paid").await, ["ga4-web:skipped:settled_by_person"]);
    let again = s.post_admin("/v1/deliveries/settle", &settle).await;
    assert_eq!(again.status(), 409, "settled once");
    let v = s.event("order:dead0:order_paid").await;
    assert_eq!(v["settlements"].as_array().unwrap().len(), 1);
    assert_eq!(v["settlements"][0]["note"], "order was cancelled");

    assert_eq!(s.post("/v1/events", &purchase("ok1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:ok1:order_paid").await, ["ga4-web:delivered:sent"]);
    let delivered = delivery_id(&s, "order:ok1:order_paid").await;

    for (body, status, code) in [
        (json!({"id": delivered, "as": "not_delivered"}), 409, "not_settleable"),
        (json!({"id": 999_999, "as": "delivered"}), 404, "not_found"),
        (json!({"id": delivered, "as": "maybe"}), 422, "invalid_settlement"),
        (json!({"id": delivered, "as": "delivered", "by": "me"}), 422, "invalid_settlement"),
        (json!({"as": "delivered"}), 422, "invalid_settlement"),
        (json!({"id": delivered, "as": "delivered", "note": "x".repeat(2001)}), 422, "invalid_settlement"),
    ] {
        let r = s.post_admin("/v1/deliveries/settle", &body).await;
        assert_eq!(r.status(), status, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], code, "{body}");
    }
    let r = s.post("/v1/deliveries/settle", &json!({"id": delivered, "as": "delivered"})).await;
    assert_eq!(r.status(), 403, "an ingest token may not settle");
    assert_eq!(s.delivery_states("order:ok1:order_paid").await, ["ga4-web:delivered:sent"], "unchanged");
    assert!(s.event("order:ok1:order_paid").await["settlements"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn cli_settles_in_doubt_and_dead_deliveries_and_refuses_a_delivered_one() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refund = ledger_with_a_refund_in_doubt(dir.path(), &ga4.base_url, "doubt2").await;
    let s = TestServer::start_sqlite_in(dir, ga4, "").await;
    assert_eq!(s.settled(&refund).await, ["ga4-web:in_doubt:crashed_while_sending"]);
    let doubt = delivery_id(&s, &refund).await;
    let dead = dead_purchase(&s, "dead2").await;
    worker_has_run(&s, "ok2").await;
    let delivered = delivery_id(&s, "order:ok2:order_paid").await;
    let config = s.dir.path().join("cli.toml");
    std::fs::write(&config, config_toml(&s.db, &s.ga4.base_url, "")).unwrap();
    let sent_before = s.ga4.received_events().len();

    let out = surety(
        &["dlq", "settle", "--id", &doubt.to_string(), "--as", "not_delivered", "--note", "not in GA4"],
        &config,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("now skipped:settled_by_person, was in_doubt:crashed_while_sending; by cli:dana"),
        "{}",
        text(&out)
    );
    let out = surety(&["dlq", "settle", "--id", &dead.to_string(), "--as", "delivered"], &config);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(s.delivery_states(&refund).await, ["ga4-web:skipped:settled_by_person"]);
    assert_eq!(s.delivery_states("order:dead2:order_paid").await, ["ga4-web:delivered:settled_by_person"]);

    // Refused: a delivered delivery, a settled one, one that does not exist; exit non-zero.
    for id in [delivered, doubt] {
        let out = surety(&["dlq", "settle", "--id", &id.to_string(), "--as", "delivered"], &config);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("only a dead, rejected or in_doubt delivery can be settled"), "{}", text(&out));
    }
    let out = surety(&["dlq", "settle", "--id", "999999", "--as", "delivered"], &config);
    assert_eq!(out.status.code(), Some(1));
    let out = surety(&["dlq", "settle", "--id", &dead.to_string(), "--as", "maybe"], &config);
    assert!(!out.status.success());
    assert_eq!(s.delivery_states("order:ok2:order_paid").await, ["ga4-web:delivered:sent"], "unchanged");

    // The timeline shows who, when and why.
    let out = surety(&["events", "show", &refund], &config);
    let shown = text(&out);
    assert!(shown.contains("[skipped:settled_by_person]"), "{shown}");
    assert!(
        shown.contains("settled as not_delivered by cli:dana (was in_doubt:crashed_while_sending) — not in GA4"),
        "{shown}"
    );
    let v = s.event(&refund).await;
    assert_eq!(v["settlements"][0]["by"], "cli:dana");

    // Nothing left for a person; a plain replay is refused, the worker leaves them alone.
    let out = surety(&["dlq", "list"], &config);
    assert!(text(&out).contains("no delivery needs a person"), "{}", text(&out));
    let out = surety(&["dlq", "replay", "--id", &doubt.to_string(), "--id", &dead.to_string()], &config);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("settled by a person"), "{}", text(&out));
    worker_has_run(&s, "ok3").await;
    assert_eq!(s.ga4.received_events().len(), sent_before + 1, "only the new purchase was sent");
    let out = surety(&["dlq", "replay", "--id", &doubt.to_string(), "--force"], &config);
    assert!(text(&out).contains("replayed 1 deliveries (forced)"), "{}", text(&out));
    assert_eq!(s.settled(&refund).await, ["ga4-web:delivered:sent"]);
}

/// A platform that answers 400 to everything leaves nothing dead, but every delivery rejected:
/// the dead-letter list shows those (and the in-doubt and dead ones), by default.
#[tokio::test]
async fn dlq_list_shows_every_delivery_that_needs_a_person() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let refund = ledger_with_a_refund_in_doubt(dir.path(), &ga4.base_url, "doubt3").await;
    let s = TestServer::start_sqlite_in(dir, ga4, "").await;
    let dead = dead_purchase(&s, "dead3").await;
    s.ga4.set_fault(Some(Fault::Status(400)));
    for order in ["bad1", "bad2"] {
        assert_eq!(s.post("/v1/events", &purchase(order, 1)).await.status(), 202);
        let states = s.settled(&format!("order:{order}:order_paid")).await;
        assert!(states[0].starts_with("ga4-web:rejected:"), "{states:?}");
    }
    s.ga4.set_fault(None);
    worker_has_run(&s, "fine").await;
    let config = s.dir.path().join("cli.toml");
    std::fs::write(&config, config_toml(&s.db, &s.ga4.base_url, "")).unwrap();

    let out = surety(&["dlq", "list"], &config);
    assert!(out.status.success(), "{}", text(&out));
    let listed = text(&out);
    for id in ["order:bad1:order_paid", "order:bad2:order_paid", "order:dead3:order_paid", refund.as_str()] {
        assert!(listed.contains(id), "{id} missing from dlq list:\n{listed}");
    }
    assert!(!listed.contains("order:fine:order_paid"), "{listed}");
    let out = surety(&["dlq", "list", "--state", "rejected", "--json"], &config);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r["event_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["order:bad1:order_paid", "order:bad2:order_paid"], "--state narrows it");

    let rows: Vec<Value> = s.get_admin("/v1/deliveries?needs_person=true").await.json().await.unwrap();
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["in_doubt", "dead", "rejected", "rejected"]);
    let page = s.http.get(s.url("/")).basic_auth("admin", Some(crate::support::ADMIN_TOKEN)).send().await.unwrap();
    let page = page.text().await.unwrap();
    for id in ["order:bad1:order_paid", "order:dead3:order_paid", refund.as_str()] {
        assert!(page.contains(id), "{id} missing from the dashboard's dead-letter list");
    }
    assert!(page.contains(&format!("surety dlq settle --id {dead} --as delivered|not_delivered")), "{page}");
}
