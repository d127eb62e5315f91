//! `surety reconcile --platform DEST=api`, run as the real binary: GA4's count read back through
//! the simulated Data API (a lost and a doubled purchase found, paged reads, a refused token),
//! Google Ads from its follow-up results, and Meta refused with why it needs a file.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, SecondsFormat, TimeZone, Utc};
use serde_json::{json, Value};

use crate::support::{config_toml_with, eventually, TestServer};

fn order(id: &str, at: DateTime<Utc>, value: f64) -> Value {
    json!({
        "kind": "order_paid",
        "occurred_at": at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "subject": {"type": "order", "id": id},
        "value": value, "currency": "EUR",
        "identity": {"client_id": format!("555.{id}"), "email": format!("{id}@example.com")},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    })
}

fn event_id(order: &str) -> String {
    format!("order:{order}:order_paid")
}

/// `surety reconcile … --json`: exit code, report and stderr. Waits off the test's runtime,
/// which serves the simulators the command reads.
async fn reconcile(config: &Path, args: &[&str]) -> (Option<i32>, Value, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_surety"));
    command.arg("reconcile").args(args).arg("--config").arg(config);
    let out = tokio::task::spawn_blocking(move || command.output()).await.unwrap().expect("run surety reconcile");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null), stderr)
}

/// The source export of these orders.
fn source(orders: &[(String, DateTime<Utc>, f64)]) -> String {
    let mut lines = vec!["subject.type,subject.id,kind,occurred_at,value,currency".to_owned()];
    for (id, at, value) in orders {
        lines.push(format!("order,{id},order_paid,{},{value:.2},EUR", at.to_rfc3339_opts(SecondsFormat::Secs, true)));
    }
    lines.join("\n") + "\n"
}

/// The configuration `surety reconcile` reads: the server's ledger, `dest_extra` in GA4's
/// table, `extra` after.
fn write_config(server: &TestServer, dest_extra: &str, extra: &str) -> std::path::PathBuf {
    let mut toml = config_toml_with(&server.db, &server.ga4.base_url, dest_extra, extra);
    if let Some(url) = &server.postgres {
        toml = toml.replace(&format!("url = \"sqlite://{}\"", server.db.display()), &format!("url = \"{url}\""));
    }
    let path = server.dir.path().join("reconcile.toml");
    std::fs::write(&path, toml).unwrap();
    path
}

/// Mismatches of one destination as (key, class).
fn found(report: &Value, dest: &str) -> BTreeSet<(String, String)> {
    report["mismatches"]
        .as_array()
        .expect("mismatches")
        .iter()
        .filter(|m| m["destination"] == dest)
        .map(|m| (m["key"].as_str().unwrap().to_owned(), m["class"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn ga4_read_back_through_the_data_api_finds_what_ga4_lost_and_doubled() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("ga4-reader.json");
    std::fs::write(&key, surety::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON).unwrap();
    // Pages of 5 rows: 11 rows take three runReport requests.
    let data_api = format!(
        "data_api = {{ property_id = \"123456789\", service_account_key = \"file:{}\", base_url = \"{}\", \
         token_url = \"{}/token\", page_size = 5 }}",
        key.display(),
        ga4.base_url,
        ga4.base_url
    );
    let server = TestServer::start_custom(dir, ga4, &data_api, "").await;
    let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let orders: Vec<(String, DateTime<Utc>, f64)> =
        (0..12).map(|i| (format!("R-{i}"), now - Duration::minutes(20 + i * 150), 10.0 + i as f64)).collect();
    for (id, at, value) in &orders {
        assert_eq!(server.post("/v1/events", &order(id, *at, *value)).await.status(), 202);
    }
    for (id, ..) in &orders {
        server.settled(&event_id(id)).await;
    }
    eventually("GA4 received every purchase", || async { server.ga4.events_named("purchase").len() >= 12 }).await;
    let (lost, doubled) = ("R-3", "R-7");
    server.ga4.drop_from_reports(lost);
    server.ga4.double_in_reports(doubled);

    let meta_token = server.dir.path().join("meta-token");
    std::fs::write(&meta_token, "meta-test-token-123456").unwrap();
    let meta = format!(
        "[[destinations]]\nname = \"meta\"\ntype = \"meta\"\npixel_id = \"1234567890\"\naccess_token = \"file:{}\"\n",
        meta_token.display()
    );
    let config = write_config(&server, &data_api, &meta);
    let source_file = server.dir.path().join("shop.csv");
    std::fs::write(&source_file, source(&orders)).unwrap();
    let src = source_file.to_str().unwrap();

    let (code, report, stderr) = reconcile(&config, &["--source", src, "--platform", "ga4-web=api", "--json"]).await;
    assert_eq!(code, Some(1), "{stderr}\n{report:#}");
    let expected: BTreeSet<(String, String)> =
        [(event_id(lost), "missing_at_platform".to_owned()), (event_id(doubled), "duplicate_at_platform".to_owned())]
            .into_iter()
            .collect();
    assert_eq!(found(&report, "ga4-web"), expected, "{report:#}");
    let dest = &report["destinations"]["ga4-web"];
    assert_eq!(dest["classes"]["matched"], 10, "{report:#}");
    assert_eq!(dest["platform_reported"], 12, "11 rows, one counted twice: {report:#}");
    assert_eq!(server.ga4.run_report_count(), 3, "pages of 5 until rowCount 11");

    // The same through the API: `"api"` in place of a file.
    let body = json!({"source": {"format": "csv", "content": source(&orders)}, "platforms": {"ga4-web": "api"}});
    let r = server.post_admin("/v1/reconcile", &body).await;
    assert_eq!(r.status(), 200);
    let api_report: Value = r.json().await.unwrap();
    assert_eq!(found(&api_report, "ga4-web"), expected, "{api_report:#}");
    // And as an upload: a text part `platforms.ga4-web` saying `api`.
    let boundary = "read-back-boundary";
    let upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"source\"; filename=\"shop.csv\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"platforms.ga4-web\"\r\n\r\napi\r\n--{boundary}--\r\n",
        source(&orders)
    );
    let r = server
        .http
        .post(server.url("/v1/reconcile"))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(upload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(found(&r.json::<Value>().await.unwrap(), "ga4-web"), expected);

    // Meta cannot be read back: a usage error saying why, on the command line and the API.
    let (code, _, stderr) = reconcile(&config, &["--source", src, "--platform", "meta=api"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("Meta cannot be read back") && stderr.contains("aggregates"), "{stderr}");
    let body = json!({"source": {"format": "csv", "content": source(&orders)}, "platforms": {"meta": "api"}});
    let r = server.post_admin("/v1/reconcile", &body).await;
    // The server's configuration has no Meta destination: refused all the same.
    assert_eq!(r.status(), 422);

    // A refused token: exit 2, Google's error named, no token in the message; the API says 502.
    server.ga4.refuse_tokens(Some("invalid_grant"));
    let (code, report, stderr) = reconcile(&config, &["--source", src, "--platform", "ga4-web=api", "--json"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(report, Value::Null);
    assert!(stderr.contains("reading GA4's count failed") && stderr.contains("invalid_grant"), "{stderr}");
    assert!(!stderr.contains("ya29"), "{stderr}");
}

#[tokio::test]
async fn ga4_api_errors_and_a_missing_data_api_table_are_clear() {
    let server = TestServer::start().await;
    let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let orders = vec![("N-1".to_owned(), now - Duration::hours(1), 20.0)];
    assert_eq!(server.post("/v1/events", &order("N-1", orders[0].1, 20.0)).await.status(), 202);
    server.settled(&event_id("N-1")).await;
    let source_file = server.dir.path().join("shop.csv");
    std::fs::write(&source_file, source(&orders)).unwrap();
    let src = source_file.to_str().unwrap();

    // No `data_api` table: what to add, or to pass a file.
    let config = write_config(&server, "", "");
    let (code, _, stderr) = reconcile(&config, &["--source", src, "--platform", "ga4-web=api"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("[destinations.data_api]") && stderr.contains("ga4-web=FILE"), "{stderr}");
    let body = json!({"source": {"format": "csv", "content": source(&orders)}, "platforms": {"ga4-web": "api"}});
    let r = server.post_admin("/v1/reconcile", &body).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_reconcile");

    // The Data API answers 403: the status and Google's words, exit 2.
    let key = server.dir.path().join("ga4-reader.json");
    std::fs::write(&key, surety::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON).unwrap();
    let data_api = format!(
        "data_api = {{ property_id = \"42\", service_account_key = \"file:{}\", base_url = \"{}\", token_url = \"{}/token\" }}",
        key.display(),
        server.ga4.base_url,
        server.ga4.base_url
    );
    let config = write_config(&server, &data_api, "");
    server.ga4.fail_next(1, surety::platforms::Fault::Status(503));
    let (code, _, stderr) = reconcile(&config, &["--source", src, "--platform", "ga4-web=api"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("HTTP 503 UNAVAILABLE"), "{stderr}");
    // Healed: the one order matches.
    let (code, report, stderr) = reconcile(&config, &["--source", src, "--platform", "ga4-web=api", "--json"]).await;
    assert_eq!(code, Some(0), "{stderr}\n{report:#}");
    assert_eq!(report["destinations"]["ga4-web"]["classes"], json!({"matched": 1}), "{report:#}");
}

#[tokio::test]
async fn google_ads_read_back_classes_conversions_by_their_follow_up_results() {
    use surety::platforms::google_ads::sim::Processing;
    let google = surety::platforms::google_ads::sim::start().await.unwrap();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("google-key.json");
    std::fs::write(&key, surety::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON).unwrap();
    let extra = format!(
        r#"
[[destinations]]
name = "google-ads"
type = "google_ads"
customer_id = "123-456-7890"
service_account_key = "file:{}"
base_url = "{}"
token_url = "{}"
status_poll_delay_secs = 0
identity_wait_secs = 0

[catalog.order_paid.google-ads]
event = "111"
"#,
        key.display(),
        google.base_url,
        google.token_url
    );
    let server = TestServer::start_custom(dir, ga4, "", &extra).await;
    let now = Utc.timestamp_opt(Utc::now().timestamp(), 0).unwrap();
    let orders: Vec<(String, DateTime<Utc>, f64)> =
        ["G-1", "G-2", "G-3"].iter().map(|id| (id.to_string(), now - Duration::hours(2), 30.0)).collect();
    let reason = |id: &'static str| {
        let server = &server;
        async move {
            let v = server.event(&event_id(id)).await;
            let d = v["deliveries"].as_array().unwrap().iter().find(|d| d["destination"] == "google-ads").cloned();
            d.map(|d| format!("{}:{}", d["state"].as_str().unwrap_or(""), d["reason"].as_str().unwrap_or("")))
        }
    };
    // G-1 accepted; G-2's request fails in processing; G-3 still processing when reconciled.
    assert_eq!(server.post("/v1/events", &order("G-1", orders[0].1, 30.0)).await.status(), 202);
    eventually("G-1 accepted", || async { reason("G-1").await.as_deref() == Some("delivered:accepted") }).await;
    google.state().set_processing(Processing::Failed(vec![("PROCESSING_ERROR_REASON_INTERNAL_ERROR".into(), 1)]));
    assert_eq!(server.post("/v1/events", &order("G-2", orders[1].1, 30.0)).await.status(), 202);
    eventually("G-2 processing failed", || async {
        reason("G-2").await.as_deref() == Some("rejected:processing_failed")
    })
    .await;
    google.state().set_processing(Processing::Success);
    google.state().set_processing_polls(u32::MAX);
    assert_eq!(server.post("/v1/events", &order("G-3", orders[2].1, 30.0)).await.status(), 202);
    eventually("G-3 sent", || async { reason("G-3").await.is_some_and(|r| r.starts_with("delivered:")) }).await;

    let config = write_config(&server, "", &extra);
    let source_file = server.dir.path().join("shop.csv");
    std::fs::write(&source_file, source(&orders)).unwrap();
    let args = ["--source", source_file.to_str().unwrap(), "--platform", "google-ads=api", "--json"];
    let (code, report, stderr) = reconcile(&config, &args).await;
    assert_eq!(code, Some(1), "{stderr}\n{report:#}");
    let classes = &report["destinations"]["google-ads"]["classes"];
    assert_eq!(classes, &json!({"matched": 1, "missing_at_platform": 1, "awaiting_confirmation": 1}), "{report:#}");
    let expected: BTreeSet<(String, String)> =
        [(event_id("G-2"), "missing_at_platform".to_owned())].into_iter().collect();
    assert_eq!(found(&report, "google-ads"), expected, "{report:#}");
    assert_eq!(report["destinations"]["google-ads"]["platform_reported"], 1, "{report:#}");
}
