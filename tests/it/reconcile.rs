//! `surety reconcile`, run as the real binary against a ledger built through the real API and
//! the GA4 simulator: a shop's last days with one injected difference of every kind; each is
//! found with its class, and nothing else is reported.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use crate::support::{config_toml, eventually, TestServer};

fn order(id: &str, at: DateTime<Utc>, value: f64) -> Value {
    json!({
        "kind": "order_paid",
        "occurred_at": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "subject": {"type": "order", "id": id},
        "value": value, "currency": "EUR",
        "identity": {"client_id": format!("555.{id}")},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    })
}

fn event_id(order: &str) -> String {
    format!("order:{order}:order_paid")
}

/// `surety reconcile … --json`: exit code and report.
fn reconcile(config: &Path, args: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_surety"))
        .arg("reconcile")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run surety reconcile");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_injected_difference_is_found_with_its_class_and_nothing_else() {
    let server = TestServer::start().await;
    // Whole seconds: the source export states times to the second.
    let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    // 30 orders over the last ~2 days (GA4 takes events up to 72 h old), 3 older ones (skipped
    // outside_window: explained), values 10.00, 11.00, …
    let mut orders: Vec<(String, DateTime<Utc>, f64)> =
        (0..30).map(|i| (format!("{}", 1000 + i), now - Duration::minutes(30 + i * 97), 10.0 + i as f64)).collect();
    for i in 0..3 {
        orders.push((format!("{}", 2000 + i), now - Duration::hours(80 + i), 50.0));
    }
    let lost = ["1003", "1017"]; // the webhooks never came: in the source only
    let revalued = "1005"; // the source says 99.00, the ledger 15.00
    let processing_time = "1008"; // the event reached Surety with processing time as its time
    let (dropped, doubled, changed, shifted) = ("1010", "1012", "1014", "1016"); // GA4's side
    let test_order = "T-1"; // in the ledger (and GA4), not in the shop

    let mut posted = Vec::new();
    for (id, at, value) in &orders {
        if lost.contains(&id.as_str()) {
            continue;
        }
        let at = if id == processing_time { *at + Duration::hours(3) } else { *at };
        let r = server.post("/v1/events", &order(id, at, *value)).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        posted.push(event_id(id));
    }
    let r = server.post("/v1/events", &order(test_order, now - Duration::hours(5), 1.0)).await;
    assert_eq!(r.status(), 202);
    posted.push(event_id(test_order));
    for id in &posted {
        server.settled(id).await;
    }
    eventually("GA4 received every purchase", || async { server.ga4.events_named("purchase").len() >= 29 }).await;

    // The source of truth: every real order (lost ones too), one re-valued, and a bad row.
    let mut source = vec!["subject.type,subject.id,kind,occurred_at,value,currency".to_owned()];
    for (id, at, value) in &orders {
        let value = if id == revalued { 99.0 } else { *value };
        source.push(format!("order,{id},order_paid,{},{value:.2},EUR", at.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }
    source.push("order,9999,order_paid,not-a-time,1.00,EUR".into());
    let bad_line = source.len() as u64;

    // GA4's exploration export of what it counted, then the platform's own differences.
    let mut ga4 = vec![
        "# ----------------------------------------".to_owned(),
        "# Purchases".to_owned(),
        "# ----------------------------------------".to_owned(),
        String::new(),
        "Transaction ID,Date,Event name,Purchase revenue,Event count".to_owned(),
    ];
    for e in server.ga4.events_named("purchase") {
        let txn = e.params["transaction_id"].as_str().unwrap().to_owned();
        let micros = e.timestamp_micros.expect("timestamp");
        let mut day = Utc.timestamp_micros(micros).unwrap().date_naive();
        let mut value = e.params["value"].as_f64().unwrap();
        let mut count = 1;
        match txn.as_str() {
            t if t == dropped => continue,
            t if t == doubled => count = 2,
            t if t == changed => value += 5.0,
            t if t == shifted => day = day.succ_opt().unwrap(),
            _ => {}
        }
        ga4.push(format!("{txn},{},purchase,{value:.2},{count}", day.format("%Y%m%d")));
    }
    // Dated on the newest order's day, inside the window the source spans (just after midnight
    // UTC, today is not).
    let newest_day = (now - Duration::minutes(30)).date_naive();
    ga4.push(format!("B-9001,{},purchase,42.00,1", newest_day.format("%Y%m%d")));
    ga4.push(",,,1234.00,31".into()); // the exploration's totals row

    let dir = server.dir.path();
    let (source_file, ga4_file, config) = (dir.join("shop.csv"), dir.join("ga4.csv"), dir.join("surety.toml"));
    std::fs::write(&source_file, source.join("\n") + "\n").unwrap();
    std::fs::write(&ga4_file, ga4.join("\n") + "\n").unwrap();
    let mut toml = config_toml(&server.db, &server.ga4.base_url, "");
    if let Some(url) = &server.postgres {
        toml = toml.replace(&format!("url = \"sqlite://{}\"", server.db.display()), &format!("url = \"{url}\""));
    }
    std::fs::write(&config, toml).unwrap();

    let platform = format!("ga4-web={}", ga4_file.display());
    let args = ["--source", source_file.to_str().unwrap(), "--platform", &platform, "--json"];
    let (code, report) = reconcile(&config, &args);
    assert_eq!(code, Some(1), "{report:#}");

    let found: BTreeSet<(String, String)> = report["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .map(|m| {
            assert_eq!(m["destination"], "ga4-web", "{m}");
            (m["key"].as_str().unwrap().to_owned(), m["class"].as_str().unwrap().to_owned())
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        (event_id(lost[0]), "not_received"),
        (event_id(lost[1]), "not_received"),
        (event_id(test_order), "not_in_source"),
        (event_id(revalued), "value_differs"),
        (event_id(processing_time), "time_differs"),
        (event_id(dropped), "missing_at_platform"),
        (event_id(doubled), "duplicate_at_platform"),
        (event_id(changed), "value_differs_at_platform"),
        (event_id(shifted), "date_differs_at_platform"),
        ("B-9001".to_owned(), "extra_at_platform"),
    ]
    .into_iter()
    .map(|(k, c)| (k, c.to_owned()))
    .collect();
    assert_eq!(found, expected, "{report:#}");

    let classes = &report["destinations"]["ga4-web"]["classes"];
    assert_eq!(classes["skipped:outside_window"], 3, "{report:#}");
    assert_eq!(classes["matched"], 30 - 2 - 2 - 4, "{report:#}");
    assert_eq!(report["totals"]["unexplained"], 10);
    assert_eq!(report["totals"]["explained"], 3);
    let bad = report["bad_rows"].as_array().unwrap();
    assert_eq!(bad.len(), 1, "{report:#}");
    assert_eq!(bad[0]["line"], bad_line);
    // Not-received names the source the order should have come from.
    let m = report["mismatches"].as_array().unwrap().iter().find(|m| m["class"] == "not_received").unwrap();
    assert!(m["detail"].as_str().unwrap().contains("'api'"), "{m}");

    // --fail-on never: the same report, exit 0; a platform that is not configured: usage, exit 2.
    let never = [&args[..], &["--fail-on", "never"]].concat();
    assert_eq!(reconcile(&config, &never).0, Some(0));
    let unknown = format!("meta={}", ga4_file.display());
    let (code, _) = reconcile(&config, &["--source", source_file.to_str().unwrap(), "--platform", &unknown]);
    assert_eq!(code, Some(2));
}

#[tokio::test]
async fn post_reconcile_answers_the_same_report_and_refuses_an_unknown_destination() {
    let server = TestServer::start().await;
    let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let at = now - Duration::hours(2);
    let r = server.post("/v1/events", &order("A-1", at, 20.0)).await;
    assert_eq!(r.status(), 202);
    server.settled(&event_id("A-1")).await;
    let t = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    let content = format!("{{\"id\":\"{}\",\"occurred_at\":\"{t}\",\"value\":20}}\n{{\"id\":\"{}\",\"occurred_at\":\"{t}\",\"value\":5,\"kind\":\"order_paid\"}}\n", event_id("A-1"), event_id("A-2"));
    let body = json!({
        "source": {"format": "ndjson", "content": content},
        "map": {"id": "event_id"},
        "platforms": {"ga4-web": {"format": "csv", "content": format!("transactionId,date,eventName,purchaseRevenue,eventCount\nA-1,{},purchase,20.00,1\n", at.format("%Y%m%d"))}}
    });
    let r = server.post_admin("/v1/reconcile", &body).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let classes = &report["destinations"]["ga4-web"]["classes"];
    assert_eq!(classes, &json!({"matched": 1, "not_received": 1}), "{report:#}");
    assert_eq!(report["mismatches"][0]["event_id"], event_id("A-2"));

    let mut wrong = body.clone();
    wrong["platforms"] = json!({"meta": {"format": "csv", "content": "Day,Results\n"}});
    let r = server.post_admin("/v1/reconcile", &wrong).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_reconcile");
    let r = server.post("/v1/reconcile", &body).await;
    assert_eq!(r.status(), 403, "an ingest token may not reconcile");
}

/// A `multipart/form-data` body built by hand: `(name, file name, content type, content)`.
fn multipart(parts: &[(&str, Option<&str>, Option<&str>, &str)]) -> (String, String) {
    let boundary = "surety-test-boundary-7c1f";
    let mut body = String::new();
    for (name, file, ctype, content) in parts {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""));
        if let Some(f) = file {
            body.push_str(&format!("; filename=\"{f}\""));
        }
        body.push_str("\r\n");
        if let Some(t) = ctype {
            body.push_str(&format!("Content-Type: {t}\r\n"));
        }
        body.push_str(&format!("\r\n{content}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn a_multipart_upload_reconciles_like_the_command_and_the_dashboard_shows_the_last_report() {
    let server = TestServer::start().await;
    let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let at = now - Duration::hours(2);
    for (id, value) in [("M-1", 20.0), ("M-2", 35.0)] {
        assert_eq!(server.post("/v1/events", &order(id, at, value)).await.status(), 202);
        server.settled(&event_id(id)).await;
    }
    let t = at.to_rfc3339_opts(SecondsFormat::Secs, true);
    // M-3 never reached Surety; GA4 lost M-2.
    let source = format!(
        "subject.type,subject.id,kind,occurred_at,value,currency\norder,M-1,order_paid,{t},20,EUR\n\
         order,M-2,order_paid,{t},35,EUR\norder,M-3,order_paid,{t},99.5,EUR\n"
    );
    let ga4 = format!(
        "transactionId,date,eventName,purchaseRevenue,eventCount\nM-1,{},purchase,20.00,1\n",
        at.format("%Y%m%d")
    );
    let post = |ctype: String, body: String, token: &'static str| {
        let http = server.http.clone();
        let url = server.url("/v1/reconcile");
        async move { http.post(url).bearer_auth(token).header("content-type", ctype).body(body).send().await.unwrap() }
    };

    // The dashboard says so before any run.
    let page = server.get_admin("/?view=reconcile").await.text().await.unwrap();
    assert!(page.contains("No reconcile report is kept in the ledger yet"), "{page}");

    let (ctype, body) = multipart(&[
        ("source", Some("shop.csv"), Some("text/csv"), &source),
        ("platforms.ga4-web", Some("ga4.csv"), None, &ga4),
        ("value_tolerance", None, None, "0.01"),
    ]);
    let r = post(ctype, body, crate::support::ADMIN_TOKEN).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    let classes = &report["destinations"]["ga4-web"]["classes"];
    assert_eq!(classes["not_received"], 1, "{report:#}");
    assert_eq!(classes["missing_at_platform"], 1, "{report:#}");
    assert_eq!(classes["matched"], 1, "{report:#}");

    // The same files through the JSON body give the same classes.
    let json_body = json!({
        "source": {"format": "csv", "content": source},
        "platforms": {"ga4-web": {"format": "csv", "content": ga4}},
    });
    let r = server.post_admin("/v1/reconcile", &json_body).await;
    assert_eq!(r.json::<Value>().await.unwrap()["destinations"]["ga4-web"]["classes"], *classes);

    // The dashboard shows the last report, its mismatches linked to their timelines.
    let page = server.get_admin("/?view=reconcile").await.text().await.unwrap();
    assert!(page.contains("2 unexplained"), "{page}");
    assert!(page.contains("not_received") && page.contains("missing_at_platform"), "{page}");
    assert!(page.contains("href=\"/?event=order%3AM-2%3Aorder_paid\""), "{page}");

    // Refusals: no source part, an unknown part, an ingest token.
    let (ctype, body) = multipart(&[("platforms.ga4-web", Some("ga4.csv"), None, &ga4)]);
    let r = post(ctype, body, crate::support::ADMIN_TOKEN).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_reconcile");
    let (ctype, body) = multipart(&[("source", Some("s.csv"), None, &source), ("sourse", None, None, "x")]);
    let r = post(ctype, body, crate::support::ADMIN_TOKEN).await;
    assert_eq!(r.status(), 422);
    let (ctype, body) = multipart(&[("source", Some("s.csv"), None, &source)]);
    let r = post(ctype, body, crate::support::INGEST_TOKEN).await;
    assert_eq!(r.status(), 403);
}
