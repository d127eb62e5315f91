//! Late arrivals: purchases of several past days posted now, through the real API. The report of
//! `GET /v1/late-arrivals` and of `surety late --json` must equal what the test computes from its
//! own inputs (each event's day, and how long after that day's end the ledger received it).

use std::collections::BTreeMap;
use std::process::Command;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::support::{config_toml, TestServer};

fn order(id: &str, at: DateTime<Utc>, value: f64) -> Value {
    json!({
        "kind": "order_paid",
        "occurred_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
        "subject": {"type": "order", "id": id},
        "value": value, "currency": "EUR",
        "identity": {"client_id": format!("555.{id}")},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    })
}

/// The bucket the report should put an event in: `None` when it came before its day ended.
fn bucket(occurred: DateTime<Utc>, received: DateTime<Utc>) -> Option<&'static str> {
    let end = occurred.date_naive().succ_opt().unwrap().and_time(NaiveTime::MIN).and_utc();
    let after = received - end;
    if received < end {
        None
    } else if after < Duration::hours(1) {
        Some("under_1h")
    } else if after < Duration::hours(24) {
        Some("under_24h")
    } else if after < Duration::hours(72) {
        Some("under_72h")
    } else {
        Some("later")
    }
}

#[derive(Default, Debug, PartialEq)]
struct Day {
    events: u64,
    on_time: u64,
    late: BTreeMap<&'static str, u64>,
    outside_window: u64,
    value: f64,
}

fn day_of(report: &Value, day: NaiveDate) -> Day {
    let d = report["days"].as_array().unwrap().iter().find(|d| d["day"] == day.to_string()).expect("the day");
    let mut late = BTreeMap::new();
    for b in ["under_1h", "under_24h", "under_72h", "later"] {
        let n = d["late"][b].as_u64().unwrap();
        if n > 0 {
            late.insert(b, n);
        }
    }
    Day {
        events: d["events"].as_u64().unwrap(),
        on_time: d["on_time"].as_u64().unwrap(),
        late,
        outside_window: d["outside_window"]["ga4-web"].as_u64().unwrap_or(0),
        value: d["value"]["EUR"].as_f64().unwrap_or(0.0),
    }
}

#[tokio::test]
async fn each_day_counts_what_came_late_and_what_changed() {
    let server = TestServer::start().await;
    let started = Utc::now();
    // Two orders per day for today and the 5 days before; GA4 takes events up to 72 h old, so
    // the oldest days' purchases are skipped outside_window.
    let mut orders = Vec::new();
    for back in 0..6i64 {
        for k in 0..2i64 {
            let at = started - Duration::days(back) - Duration::minutes(5 + k * 7);
            orders.push((format!("L{back}{k}"), at, 10.0 * (back + 1) as f64 + k as f64));
        }
    }
    for (id, at, value) in &orders {
        let r = server.post("/v1/events", &order(id, *at, *value)).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }

    // The expectation, from the inputs and the time the ledger received each event.
    let mut expected: BTreeMap<NaiveDate, Day> = BTreeMap::new();
    for (id, at, value) in &orders {
        let event_id = format!("order:{id}:order_paid");
        let states = server.settled(&event_id).await;
        let view = server.event(&event_id).await;
        let received: DateTime<Utc> = view["event"]["received_at"].as_str().unwrap().parse().unwrap();
        let d = expected.entry(at.date_naive()).or_default();
        d.events += 1;
        d.value += value;
        match bucket(*at, received) {
            None => d.on_time += 1,
            Some(b) => *d.late.entry(b).or_default() += 1,
        }
        if states.iter().any(|s| s.ends_with(":skipped:outside_window")) {
            d.outside_window += 1;
        }
    }
    assert!(expected.values().map(|d| d.outside_window).sum::<u64>() >= 2, "old purchases skipped: {expected:?}");

    let since = (started - Duration::days(7)).date_naive();
    let path = format!(
        "/v1/late-arrivals?since={since}&changed_since={}",
        urlencoding(&started.to_rfc3339_opts(SecondsFormat::Millis, true))
    );
    let r = server.get_admin(&path).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["events"], orders.len() as u64);
    for (day, want) in &expected {
        assert_eq!(&day_of(&report, *day), want, "{day}: {report:#}");
        // Every event was received after `started`: each day gained all of its events.
        let got = report["days"].as_array().unwrap().iter().find(|d| d["day"] == day.to_string()).unwrap();
        assert_eq!(got["changed"]["events"], want.events, "{day}");
    }

    // The command line says the same from the ledger file.
    let config = server.dir.path().join("surety.toml");
    std::fs::write(&config, config_toml(&server.db, &server.ga4.base_url, "")).unwrap();
    if server.postgres.is_none() {
        let out = Command::new(env!("CARGO_BIN_EXE_surety"))
            .args(["late", "--json", "--since", &since.to_string(), "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
        for day in expected.keys() {
            assert_eq!(day_of(&cli, *day), day_of(&report, *day));
        }
        // A bad bound is a usage error naming the flag, exit 2.
        let out = Command::new(env!("CARGO_BIN_EXE_surety"))
            .args(["late", "--since", "yesterday", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
    }

    // Nothing changed after now; a bad parameter is a 400 problem.
    let later = urlencoding(&(Utc::now() + Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true));
    let r = server.get_admin(&format!("/v1/late-arrivals?since={since}&changed_since={later}")).await;
    let report: Value = r.json().await.unwrap();
    assert!(report["days"].as_array().unwrap().iter().all(|d| d.get("changed").is_none()), "{report:#}");
    // An empty window counts nothing (the command line refuses it as a usage error).
    let r = server.get_admin("/v1/late-arrivals?since=2026-12-01&until=2026-11-01").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["events"], 0);
    let r = server.get_admin("/v1/late-arrivals?since=someday").await;
    assert_eq!(r.status(), 400);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_query");
}

fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}

#[tokio::test]
async fn coverage_counts_what_each_event_carried_and_what_became_of_it() {
    let server = TestServer::start().await;
    let now = Utc::now();
    let mut want_fields: BTreeMap<&str, u64> = BTreeMap::new();
    let mut want_consent: BTreeMap<&str, u64> = BTreeMap::new();
    let mut want_states: BTreeMap<String, u64> = BTreeMap::new();
    let n = 12;
    for i in 0..n {
        let id = format!("C{i}");
        let mut identity = serde_json::Map::new();
        if i % 3 != 0 {
            identity.insert("client_id".into(), json!(format!("555.{i}")));
            *want_fields.entry("client_id").or_default() += 1;
        }
        if i % 2 == 0 {
            identity.insert("email".into(), json!(format!("buyer{i}@example.com")));
            *want_fields.entry("email").or_default() += 1;
        }
        if i % 4 == 0 {
            identity.insert("gclid".into(), json!(format!("Cj0K{i}")));
            *want_fields.entry("gclid").or_default() += 1;
            *want_fields.entry("any_click_id").or_default() += 1;
        }
        let analytics = if i % 5 == 0 { "denied" } else { "granted" };
        if analytics == "granted" {
            *want_consent.entry("analytics").or_default() += 1;
        }
        *want_consent.entry("ad_user_data").or_default() += 1;
        let body = json!({
            "kind": "order_paid",
            "occurred_at": (now - Duration::minutes(10 + i)).to_rfc3339_opts(SecondsFormat::Millis, true),
            "subject": {"type": "order", "id": id},
            "value": 20.0, "currency": "EUR",
            "identity": identity,
            "consent": {"analytics": analytics, "ad_user_data": "granted"}
        });
        let r = server.post("/v1/events", &body).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    for i in 0..n {
        for s in server.settled(&format!("order:C{i}:order_paid")).await {
            // destination:state[:reason]
            let state = s.split_once(':').unwrap().1.to_owned();
            *want_states.entry(state).or_default() += 1;
        }
    }

    let r = server.get_admin("/v1/coverage?by=kind").await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["events"], n);
    let row = report["rows"].as_array().unwrap().iter().find(|r| r["key"] == "order_paid").unwrap();
    assert_eq!(row["events"], n);
    for (field, count) in &want_fields {
        assert_eq!(row["fields"][field], *count, "{field}: {row:#}");
    }
    assert!(row["fields"].get("phone").is_none());
    for (purpose, count) in &want_consent {
        assert_eq!(row["consent"][purpose], *count, "{purpose}: {row:#}");
    }
    let ga4 = &row["destinations"]["ga4-web"];
    assert_eq!(ga4["planned"], n);
    let got_delivered = ga4["delivered"].as_u64().unwrap();
    let want_delivered: u64 = want_states.iter().filter(|(s, _)| s.starts_with("delivered")).map(|(_, n)| n).sum();
    assert_eq!(got_delivered, want_delivered, "{want_states:?} {ga4:#}");
    for (state, count) in &want_states {
        if let Some(reason) = state.strip_prefix("skipped:") {
            assert_eq!(ga4["skipped"][reason], *count, "{state}: {ga4:#}");
        }
    }
    assert!(want_states.keys().any(|s| s.starts_with("skipped:")), "some deliveries skipped: {want_states:?}");

    // By destination: one row per destination, the same counts.
    let r = server.get_admin("/v1/coverage?by=destination").await;
    let report: Value = r.json().await.unwrap();
    let row = report["rows"].as_array().unwrap().iter().find(|r| r["key"] == "ga4-web").unwrap();
    assert_eq!(row["destinations"]["ga4-web"]["delivered"], got_delivered);
    // An unknown grouping is a 400 problem.
    let r = server.get_admin("/v1/coverage?by=planet").await;
    assert_eq!(r.status(), 400);
}
