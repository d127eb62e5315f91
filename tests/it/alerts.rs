//! `[[alerts]]` in a running server: a dead delivery fires the rule once, its webhook message is
//! retried until the receiver takes it, and replaying the delivery resolves the alert once.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Json;
use serde_json::{json, Value};
use surety::sim::Fault;

use crate::support::{eventually, purchase, TestServer};

/// A webhook receiver that fails its first `fail` requests with 500, then records what it takes.
async fn receiver(fail: usize) -> (String, Arc<Mutex<(usize, Vec<Value>)>>) {
    let seen = Arc::new(Mutex::new((0usize, Vec::new())));
    let state = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |Json(body): Json<Value>| {
            let state = state.clone();
            async move {
                let mut s = state.lock().unwrap();
                s.0 += 1;
                if s.0 <= fail {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                s.1.push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test]
async fn a_dead_delivery_fires_once_is_retried_to_the_webhook_and_resolves_once() {
    let (url, seen) = receiver(2).await;
    let extra = format!(
        "[alerting]\ninterval_secs = 1\nwebhook_url = \"{url}\"\nmax_attempts = 5\nretry_base_ms = 50\n\n\
         [[alerts]]\nname = \"dead-letters\"\nwhen = \"dead\"\nabove = 0\n"
    );
    let s = TestServer::start_with(&extra).await;
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("al1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:al1:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);

    eventually("the firing message reached the webhook", || async { !seen.lock().unwrap().1.is_empty() }).await;
    let v: Value = s.get_admin("/v1/alerts").await.json().await.unwrap();
    assert_eq!(v["evaluating"], true);
    assert_eq!(v["active"][0]["rule"], "dead-letters");
    assert_eq!(v["active"][0]["destination"], "ga4-web");
    assert_eq!(v["recent"][0]["status"], "firing");
    assert_eq!(v["recent"][0]["notification"], json!({"state": "sent", "attempts": 3}), "two 500s, then taken");

    // A person replays it; it is delivered, the rule no longer holds: one resolved message.
    s.ga4.set_fault(None);
    let r = s.post_admin("/v1/deliveries/replay", &json!({"state": "dead", "destination": "ga4-web"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(s.settled("order:al1:order_paid").await, ["ga4-web:delivered:sent"]);
    eventually("the resolved message reached the webhook", || async { seen.lock().unwrap().1.len() >= 2 }).await;
    // Evaluations go on; nothing more is sent.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let got = seen.lock().unwrap().1.clone();
    let statuses: Vec<&str> = got.iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["firing", "resolved"], "{got:#?}");
    assert_eq!(got[0]["rule"], "dead-letters");
    assert_eq!(got[0]["value"], 1.0);
    assert!(got[0]["summary"].as_str().unwrap().contains("FIRING dead-letters: ga4-web"));
    let v: Value = s.get_admin("/v1/alerts").await.json().await.unwrap();
    assert!(v["active"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_rule_naming_an_unknown_destination_is_a_config_problem() {
    let text = crate::support::config_toml(
        std::path::Path::new("/tmp/x.db"),
        "http://127.0.0.1:9",
        "[[alerts]]\nname = \"x\"\nwhen = \"rejection_share\"\nabove = 5\ndestination = \"nowhere\"\n",
    );
    let problems = surety::config::Config::from_toml(&text).unwrap_err().problems;
    assert!(
        problems.iter().any(|p| p.contains("alerts[0].destination: no destination named 'nowhere'")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("alerts[0].above: a rejection_share is between 0 and 1")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn coverage_below_its_share_and_an_unexplained_reconcile_fire_and_resolve() {
    let extra = "[alerting]\ninterval_secs = 1\n\n\
         [[alerts]]\nname = \"email-coverage\"\nwhen = \"coverage\"\nfield = \"email\"\nbelow = 0.5\nwindow_secs = 86400\n\n\
         [[alerts]]\nname = \"reconcile-gaps\"\nwhen = \"reconcile_unexplained\"\nabove = 0\n";
    let s = TestServer::start_with(extra).await;
    // Three orders without an email: coverage 0 % for ga4-web.
    for id in ["cv1", "cv2", "cv3"] {
        let mut e = purchase(id, 1);
        e["identity"].as_object_mut().unwrap().remove("email");
        assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    }
    let active = |v: &Value| -> Vec<String> {
        v["active"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| format!("{}:{}", a["rule"].as_str().unwrap(), a["destination"].as_str().unwrap()))
            .collect()
    };
    eventually("the coverage rule fires", || async {
        let v: Value = s.get_admin("/v1/alerts").await.json().await.unwrap();
        active(&v) == ["email-coverage:ga4-web"]
    })
    .await;
    let v: Value = s.get_admin("/v1/alerts").await.json().await.unwrap();
    assert_eq!(v["active"][0]["below"], 0.5);
    assert_eq!(v["active"][0]["value"], 0.0);

    // Seven orders with an email: 7 of 10 carry one, above the share: resolved.
    for i in 0..7 {
        assert_eq!(s.post("/v1/events", &purchase(&format!("cv-mail-{i}"), 1)).await.status(), 202);
    }
    eventually("the coverage rule resolves", || async {
        let v: Value = s.get_admin("/v1/alerts").await.json().await.unwrap();
        active(&v).is_empty() && v["recent"][0]["status"] == "resolved"
    })
    .await;

    // A reconcile whose source names an order Surety never received: one unexplained gap.
    let t = (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    let source =
        format!("subject.type,subject.id,kind,occurred_at,value,currency\norder,never-came,order_paid,{t},10,EUR\n");
    let r = s.post_admin("/v1/reconcile", &json!({"source": {"format": "csv", "content": source}})).await;
    assert_eq!(r.status(), 200);
    eventually("the reconcile rule fires", || async {
        let v: Value = s.get_admin("/v1/alerts").await.json().await.unwrap();
        active(&v) == ["reconcile-gaps:ga4-web"]
    })
    .await;
}

#[test]
fn coverage_rules_are_checked_for_their_field_and_share() {
    let text = crate::support::config_toml(
        std::path::Path::new("/tmp/x.db"),
        "http://127.0.0.1:9",
        "[[alerts]]\nname = \"a\"\nwhen = \"coverage\"\nfield = \"emial\"\nbelow = 1.5\n\n\
         [[alerts]]\nname = \"b\"\nwhen = \"coverage\"\nabove = 3\n\n\
         [[alerts]]\nname = \"c\"\nwhen = \"dead\"\nbelow = 0.5\nfield = \"email\"\n",
    );
    let problems = surety::config::Config::from_toml(&text).unwrap_err().problems;
    for expected in [
        "alerts[0].field: 'emial' is not counted by coverage",
        "alerts[0].below: a coverage share is between 0 and 1",
        "alerts[1].below: a coverage rule fires below a share",
        "alerts[1].field: a coverage rule names the field it counts",
        "alerts[1].above: a coverage rule fires below a share: use below, not above",
        "alerts[2].below: only a coverage rule fires below a value",
        "alerts[2].field: only a coverage rule counts a field",
    ] {
        assert!(problems.iter().any(|p| p.contains(expected)), "{expected}: {problems:?}");
    }
}

async fn evaluating(s: &TestServer) -> bool {
    s.get_admin("/v1/alerts").await.json::<Value>().await.unwrap()["evaluating"] == true
}

/// Two processes on one PostgreSQL ledger: one leads and evaluates the rules; when it stops, the
/// other takes the lead.
#[tokio::test]
async fn one_of_two_processes_on_a_postgres_ledger_evaluates_and_the_lead_passes_on() {
    let url = crate::support::postgres_ledger().await;
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let extra = "[alerting]\ninterval_secs = 1\n\n[[alerts]]\nname = \"depth\"\nwhen = \"queue_depth\"\nabove = 1000\n";
    let a = TestServer::start_postgres(ga4.clone(), &url, extra, |t| t).await;
    let b = TestServer::start_postgres(ga4.clone(), &url, extra, |t| t).await;
    eventually("a process leads", || async { evaluating(&a).await || evaluating(&b).await }).await;
    // Both have asked several times by now: still exactly one leads.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (ea, eb) = (evaluating(&a).await, evaluating(&b).await);
    assert!(ea != eb, "exactly one leads: a {ea}, b {eb}");
    let (leader, other) = if ea { (a, b) } else { (b, a) };
    leader.stop().await;
    eventually("the other process takes the lead", || async { evaluating(&other).await }).await;
}
