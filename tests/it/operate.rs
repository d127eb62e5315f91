//! Operating Surety: health, metrics, the deliveries list, and the command line.

use std::process::Command;

use serde_json::Value;
use surety::sim::Fault;

use crate::support::{purchase, TestServer};

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = TestServer::start().await;
    assert_eq!(s.http.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(s.http.get(s.url("/readyz")).send().await.unwrap().status(), 200);
    s.ga4.fail_next(1, Fault::Status(503));
    assert_eq!(s.post("/v1/events", &purchase("m1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:m1:order_paid").await, ["ga4-web:delivered:sent"]);

    let text = s.http.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for needle in [
        r#"surety_events_total{source="api",kind="order_paid",status="accepted"} 1"#,
        r#"surety_deliveries_total{destination="ga4-web",state="delivered",reason="sent"} 1"#,
        r#"surety_attempts_total{destination="ga4-web",status_code="503"} 1"#,
        r#"surety_attempts_total{destination="ga4-web",status_code="204"} 1"#,
        r#"surety_queue_depth"#,
        r#"surety_delivery_latency_seconds_bucket"#,
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
}

#[tokio::test]
async fn deliveries_can_be_listed_by_state_and_destination() {
    let s = TestServer::start().await;
    assert_eq!(s.post("/v1/events", &purchase("l1", 80)).await.status(), 202);
    assert_eq!(s.post("/v1/events", &purchase("l2", 1)).await.status(), 202);
    s.settled("order:l2:order_paid").await;
    let r: Vec<Value> = s.get_admin("/v1/deliveries?state=skipped&destination=ga4-web").await.json().await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["event_id"], "order:l1:order_paid");
    assert_eq!(r[0]["reason"], "outside_window");
    let bad = s.get_admin("/v1/deliveries?state=bogus").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["code"], "invalid_query");
}

fn surety(args: &[&str], config: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_surety")).args(args).arg("--config").arg(config).output().expect("run surety")
}

#[tokio::test]
async fn cli_shows_timelines_lists_and_replays_dead_letters() {
    let s = TestServer::start().await;
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("cli1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:cli1:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);
    s.ga4.set_fault(None);
    let config = s.dir.path().join("cli.toml");
    std::fs::write(&config, s.cli_config("")).unwrap();

    let out = surety(&["events", "show", "order:cli1:order_paid"], &config);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dead:attempts_exhausted"), "{text}");
    assert!(text.contains("attempt 4 retry: 500"), "{text}");

    let out = surety(&["dlq", "list"], &config);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("order:cli1:order_paid"));

    let out = surety(&["dlq", "replay", "--dry-run", "--json"], &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((dry["dry_run"].as_bool(), dry["replayed"].as_array().map(Vec::len)), (Some(true), Some(1)));
    let out = surety(&["dlq", "replay", "--dry-run"], &config);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("would replay 1 deliveries"));
    assert_eq!(s.delivery_states("order:cli1:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);

    let out = surety(&["dlq", "replay"], &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("replayed 1"));
    assert_eq!(s.settled("order:cli1:order_paid").await, ["ga4-web:delivered:sent"]);
    let by = s.event("order:cli1:order_paid").await["replays"][0]["by"].clone();
    assert!(by.as_str().is_some_and(|b| b.starts_with("cli:")), "who replayed: the command line's user: {by}");
    let out = surety(&["events", "show", "order:cli1:order_paid"], &config);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("replayed from dead by {}", by.as_str().unwrap())), "{text}");

    let out = surety(&["events", "show", "no-such-event"], &config);
    assert_eq!(out.status.code(), Some(1));

    // Retention from the command line: nothing is a day old yet, and a period shorter than
    // GA4's window is refused with the reason.
    let out = surety(&["prune", "--older-than-days", "4"], &config);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 events"), "{}", String::from_utf8_lossy(&out.stdout));
    let out = surety(&["prune", "--older-than-days", "2"], &config);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("3-day window"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.counts().await.events, 1);
}

#[test]
fn check_config_explains_every_problem_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[[destinations]]
name = "ga4"
type = "ga4"
measurement_id = "UA-123"
api_secret = "env:SURETY_IT_SURELY_UNSET_SECRET"
batch_size = 40

[catalog.order_paid]
nowhere = { event = "purchase" }
"#,
    )
    .unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_surety")).args(["check-config", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in
        ["measurement_id", "SURETY_IT_SURELY_UNSET_SECRET is not set", "batch_size", "no destination named 'nowhere'"]
    {
        assert!(err.contains(needle), "check-config does not mention {needle}:\n{err}");
    }

    std::fs::write(&path, "[storage]\nurl = \"sqlite://x.db\"\n").unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_surety")).args(["check-config", "--config"]).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = Command::new(env!("CARGO_BIN_EXE_surety")).args(["check-config", "--print-default"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("[retry]"));
}

/// Retention deletes ended events with their history, batch by batch, and keeps dead letters
/// (and the requests their attempts refer to) whatever their age.
#[tokio::test]
async fn pruning_deletes_ended_history_and_keeps_dead_letters() {
    let s = TestServer::start().await;
    s.ga4.set_fault(Some(surety::sim::Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("dead", 1)).await.status(), 202);
    assert_eq!(s.settled("order:dead:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);
    s.ga4.set_fault(None);
    let mut not_routed = purchase("n", 1);
    not_routed["kind"] = serde_json::json!("fulfillment_failed");
    for e in [purchase("a", 1), purchase("b", 1), purchase("old", 80), not_routed] {
        assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    }
    assert_eq!(s.settled("order:a:order_paid").await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.settled("order:b:order_paid").await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.counts().await.events, 5);

    // As if a long time had passed: everything was received before the cutoff.
    let store = s.store().await;
    let cutoff = chrono::Utc::now() + chrono::Duration::days(1);
    let cancel = tokio_util::sync::CancellationToken::new();
    let pruned = surety::prune_all(store.as_ref(), cutoff, 2, &cancel).await.unwrap();
    assert_eq!((pruned.events, pruned.deliveries), (4, 3), "{pruned:?}");
    assert!(pruned.attempts >= 2 && pruned.requests >= 1, "{pruned:?}");

    let c = s.counts().await;
    assert_eq!(c.events, 1, "only the event with a dead delivery is left");
    let v = s.event("order:dead:order_paid").await;
    assert_eq!(v["deliveries"][0]["state"], "dead");
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 4, "its history is intact");
    assert!(attempts.iter().all(|a| a["http_status"] == 500), "and the requests its attempts name: {v}");
    let gone = s.get_admin("/v1/events/order:a:order_paid").await;
    assert_eq!(gone.status(), 404);
    assert!(surety::prune_all(store.as_ref(), cutoff, 2, &cancel).await.unwrap().is_empty(), "nothing left to prune");
}
