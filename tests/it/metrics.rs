//! `GET /metrics` as an SRE reads it: every destination's gauges present at 0 when idle, help on
//! every metric, build info, HTTP requests by route and status, the format the scraper asks for,
//! and `promtool check metrics` clean (where promtool is installed: scripts/install_promtool.sh).

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::{purchase, TestServer};

async fn scrape(s: &TestServer, accept: Option<&str>) -> (String, String) {
    let mut request = s.http.get(s.url("/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn an_idle_instance_shows_every_gauge_at_zero_with_help_and_build_info() {
    let s = TestServer::start().await;
    let (content_type, text) = scrape(&s, None).await;
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    for line in [
        r#"surety_queue_depth{destination="ga4-web"} 0"#,
        r#"surety_oldest_pending_age_seconds{destination="ga4-web"} 0.0"#,
        r#"surety_circuit_open{destination="ga4-web"} 0"#,
        r#"surety_deliveries_planned_total{destination="ga4-web"} 0"#,
        &format!(r#"surety_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION")),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    // Every metric family has help text, and every sample belongs to a family with a TYPE.
    let typed: BTreeSet<&str> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).map(|l| l.split(' ').next().unwrap()).collect();
    assert!(typed.len() >= 11, "{typed:?}");
    for name in &typed {
        let help = text.lines().find_map(|l| l.strip_prefix(&format!("# HELP {name} ")));
        assert!(help.is_some_and(|h| h.trim().len() > 10), "{name} has no help text");
    }
    assert!(typed.contains("surety_events_total"), "counters are named by their samples in this format: {typed:?}");
    assert!(!text.contains("# EOF") && !text.contains("# UNIT"), "OpenMetrics-only lines in the text format");
    s.stop().await;
}

#[tokio::test]
async fn a_scraper_asking_for_openmetrics_gets_it() {
    let s = TestServer::start().await;
    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (content_type, text) = scrape(&s, Some(accept)).await;
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE surety_events counter"), "{text}");
    s.stop().await;
}

#[tokio::test]
async fn http_requests_are_counted_and_timed_by_route_pattern_and_status() {
    let s = TestServer::start().await;
    assert_eq!(s.post("/v1/events", &purchase("h1", 1)).await.status(), 202);
    s.settled("order:h1:order_paid").await;
    assert_eq!(s.get_admin("/v1/events/order:h1:order_paid").await.status(), 200);
    assert_eq!(s.get_admin("/v1/events/order:nope:order_paid").await.status(), 404);
    assert_eq!(s.http.get(s.url("/no/such/page")).send().await.unwrap().status(), 404);
    let (_, text) = scrape(&s, None).await;
    for needle in [
        r#"surety_http_requests_total{method="POST",route="/v1/events",status="202"} 1"#,
        r#"surety_http_requests_total{method="GET",route="/v1/events/{id}",status="200"}"#,
        r#"surety_http_requests_total{method="GET",route="/v1/events/{id}",status="404"} 1"#,
        r#"surety_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"surety_http_request_duration_seconds_count{method="POST",route="/v1/events",status="202"} 1"#,
        r#"surety_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/v1/events/{id}",status="404"} 1"#,
    ] {
        assert!(text.contains(needle), "no {needle} in:\n{text}");
    }
    assert!(!text.contains("order:h1"), "a concrete path became a label");
    s.stop().await;
}

/// `promtool check metrics` on `text`: panics with what it said unless it found nothing; says it
/// skipped where promtool is not installed.
fn promtool_check(text: &str) {
    let Ok(found) = Command::new("sh").args(["-c", "command -v promtool"]).output() else {
        eprintln!("skipped: promtool check metrics (no sh)");
        return;
    };
    if !found.status.success() {
        eprintln!("skipped: promtool check metrics (promtool is not installed: run scripts/install_promtool.sh)");
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n---\n{text}");
}

#[tokio::test]
async fn promtool_finds_nothing_to_lint() {
    let s = TestServer::start().await;
    assert_eq!(s.post("/v1/events", &purchase("p1", 1)).await.status(), 202);
    s.settled("order:p1:order_paid").await;
    let (_, text) = scrape(&s, None).await;
    s.stop().await;
    promtool_check(&text);
}

#[tokio::test]
async fn each_stored_event_is_counted_by_how_late_it_arrived() {
    let s = TestServer::start().await;
    // Two hours late: above the 1 h bucket, within the 6 h one.
    let event = purchase("late-1", 2);
    assert_eq!(s.post("/v1/events", &event).await.status(), 202);
    // The same event again is a duplicate: not counted a second time.
    assert_eq!(s.post("/v1/events", &event).await.status(), 200);
    let (_, text) = scrape(&s, None).await;
    let bucket = |le: &str| {
        let prefix = format!(r#"surety_event_lateness_seconds_bucket{{le="{le}",source="api",kind="order_paid"}} "#);
        text.lines().find_map(|l| l.strip_prefix(&prefix)).map(str::to_owned)
    };
    // Planned once, not again for the duplicate; the pending delivery is not an ended one.
    assert!(text.lines().any(|l| l == r#"surety_deliveries_planned_total{destination="ga4-web"} 1"#), "{text}");
    assert!(!text.contains(r#"state="pending""#), "{text}");
    assert_eq!(bucket("3600.0").as_deref(), Some("0"), "{text}");
    assert_eq!(bucket("21600.0").as_deref(), Some("1"), "{text}");
    assert!(text.lines().any(|l| l == r#"surety_event_lateness_seconds_count{source="api",kind="order_paid"} 1"#));
    s.stop().await;
}

/// Google Ads' status follow-ups are counted: every question asked, and every final answer by its
/// result; both present at 0 before the first, for the destination that has follow-ups only.
#[tokio::test]
async fn google_ads_status_follow_ups_are_counted_as_polls_and_confirmations() {
    let google = surety::platforms::google_ads::sim::start().await.unwrap();
    // Two "still processing" answers before the result: three polls, one confirmation.
    google.state().set_processing_polls(2);
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
service_account_key = "file:{key}"
base_url = "{url}"
token_url = "{token_url}"
status_poll_delay_secs = 0

[catalog.order_paid.google-ads]
event = "111"
"#,
        key = key.display(),
        url = google.base_url,
        token_url = google.token_url,
    );
    let s = TestServer::start_custom(dir, ga4, "", &extra).await;
    let (_, idle) = scrape(&s, None).await;
    let mut zeros = vec![r#"surety_follow_up_polls_total{destination="google-ads"} 0"#.to_owned()];
    for result in ["accepted", "partial", "failed", "unconfirmed"] {
        zeros.push(format!(r#"surety_follow_up_confirmations_total{{destination="google-ads",result="{result}"}} 0"#));
    }
    for line in &zeros {
        assert!(idle.lines().any(|l| l == line), "no line {line:?} in:\n{idle}");
    }
    assert!(!idle.contains(r#"surety_follow_up_polls_total{destination="ga4-web"}"#), "GA4 has no follow-ups");
    for family in ["surety_follow_up_polls_total", "surety_follow_up_confirmations_total"] {
        let help = idle.lines().find_map(|l| l.strip_prefix(&format!("# HELP {family} ")));
        assert!(help.is_some_and(|h| h.len() > 40), "{family} has help text");
    }

    assert_eq!(s.post("/v1/events", &purchase("fu-1", 1)).await.status(), 202);
    crate::support::eventually("Google Ads confirms the request processed", || async {
        let v = s.event("order:fu-1:order_paid").await;
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["destination"] == "google-ads" && d["reason"] == "accepted")
    })
    .await;
    let (_, text) = scrape(&s, None).await;
    let value = |line: &str| text.lines().find_map(|l| l.strip_prefix(line)).map(|v| v.trim().to_owned());
    assert_eq!(value(r#"surety_follow_up_polls_total{destination="google-ads"} "#).as_deref(), Some("3"), "{text}");
    let confirmed = r#"surety_follow_up_confirmations_total{destination="google-ads",result="accepted"} "#;
    assert_eq!(value(confirmed).as_deref(), Some("1"), "{text}");
    let failed = r#"surety_follow_up_confirmations_total{destination="google-ads",result="failed"} "#;
    assert_eq!(value(failed).as_deref(), Some("0"));
    promtool_check(&text);
    s.stop().await;
    google.shutdown().await;
}
