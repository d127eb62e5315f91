//! The dashboard at `GET /`: admin auth by bearer or Basic (with a browser challenge), the
//! ledger's totals and dead letters on one page, an event's timeline, and escaping.

use base64::Engine;
use serde_json::json;
use surety::sim::Fault;

use crate::support::{purchase, urlencode, TestServer, ADMIN_TOKEN, INGEST_TOKEN, SEGMENT_WRITE_KEY};

const SEGMENT: &str = r#"
[sources.segment]
write_keys = ["env:SURETY_IT_SEGMENT_KEY"]
"#;

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `GET path` with the admin token as a browser sends it; the status, content type and body.
async fn browse(s: &TestServer, path: &str) -> (u16, String, String) {
    let r = s.http.get(s.url(path)).header("authorization", basic("ops", ADMIN_TOKEN)).send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, r.text().await.unwrap())
}

#[tokio::test]
async fn the_page_shows_totals_dead_letters_refused_receipts_and_a_timeline() {
    let s = TestServer::start_with(SEGMENT).await;
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("dead-1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:dead-1:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);
    s.ga4.set_fault(None);
    assert_eq!(s.post("/v1/events", &purchase("ok-1", 1)).await.status(), 202);
    let mut unrouted = purchase("u-1", 1);
    unrouted["kind"] = json!("fulfillment_failed");
    assert_eq!(s.post("/v1/events", &unrouted).await.status(), 202);
    assert_eq!(s.settled("order:ok-1:order_paid").await, ["ga4-web:delivered:sent"]);
    let batch = json!({"writeKey": SEGMENT_WRITE_KEY, "batch": [
        {"type": "track", "event": "Order Refunded", "userId": "u-1", "properties": {"order_id": "o-1"}}
    ]});
    // Nothing in the batch is valid (400); the message is kept as an invalid receipt.
    assert_eq!(s.http.post(s.url("/v1/batch")).json(&batch).send().await.unwrap().status(), 400);

    let (status, ct, html) = browse(&s, "/").await;
    assert_eq!(status, 200, "{html}");
    assert!(ct.starts_with("text/html"), "{ct}");
    let c = s.counts().await;
    assert_eq!((c.events, c.routed, c.not_routed, c.conflicts), (3, 2, 1, 0));
    for (n, label) in [(3, "events"), (2, "routed"), (1, "not routed"), (0, "conflicts")] {
        assert!(html.contains(&format!("<b>{n}</b>{label}")), "total {label} = {n} in {html}");
    }
    // The "adds up" table: both deliveries of ga4-web, by state and reason.
    assert!(html.contains("<h3>ga4-web"), "{html}");
    assert!(html.contains("<td>dead</td><td>attempts_exhausted</td><td class=\"n\">1</td>"), "{html}");
    assert!(html.contains("<td>delivered</td><td>sent</td><td class=\"n\">1</td>"), "{html}");
    assert!(html.contains("2 planned = delivered 1 + dead 1"), "{html}");
    assert!(html.contains("circuit closed") || html.contains("circuit open"), "{html}");
    // The dead letter, with a link to its timeline and the command that replays it.
    let dead = &s.event("order:dead-1:order_paid").await["deliveries"][0];
    let dead_id = dead["id"].as_i64().unwrap();
    let stuck = html.split("Dead, rejected and in doubt").nth(1).expect("dead-letter section");
    assert!(stuck.contains("<a href=\"/?event=order%3Adead-1%3Aorder_paid\">order:dead-1:order_paid</a>"), "{stuck}");
    assert!(stuck.contains("<td>ga4-web</td><td>dead</td><td>attempts_exhausted</td><td class=\"n\">4</td>"));
    assert!(stuck.contains(&format!("surety dlq replay --id {dead_id}")), "{stuck}");
    assert!(!stuck.contains("ok-1"), "only dead and in-doubt deliveries are listed");
    // The Segment message that could not become an event (it has no messageId).
    let refused = html.split("Ignored and invalid receipts").nth(1).expect("receipts section");
    assert!(refused.contains("<td>segment</td>") && refused.contains("<td>invalid</td>"), "{refused}");
    assert!(refused.contains("messageId"), "{refused}");
    // Secrets stay out: the GA4 API secret and the tokens.
    for secret in ["sim-secret", ADMIN_TOKEN, INGEST_TOKEN, SEGMENT_WRITE_KEY] {
        assert!(!html.contains(secret), "{secret} rendered");
    }

    let (status, _, timeline) = browse(&s, &format!("/?event={}", urlencode("order:dead-1:order_paid"))).await;
    assert_eq!(status, 200);
    assert!(timeline.contains("<h2>Event <code>order:dead-1:order_paid</code></h2>"), "{timeline}");
    assert!(timeline.contains("<h3>Deliveries</h3>") && timeline.contains("attempts_exhausted"));
    let attempts = timeline.split("<h3>Attempts</h3>").nth(1).expect("attempts section");
    assert_eq!(attempts.matches("<td class=\"n\">500</td>").count(), 4, "four attempts, each HTTP 500: {attempts}");
    assert!(!timeline.contains("setInterval"), "a timeline does not reload itself");

    let (status, _, missing) = browse(&s, "/?event=order%3Anope%3Aorder_paid").await;
    assert_eq!(status, 404);
    assert!(missing.contains("No event with id <code>order:nope:order_paid</code>"), "{missing}");
}

#[tokio::test]
async fn the_page_wants_an_admin_and_asks_the_browser_for_one() {
    let s = TestServer::start().await;
    let r = s.http.get(s.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Basic realm=\"surety\"");

    let r = s.http.get(s.url("/")).header("authorization", basic("ops", "wrong")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = s.http.get(s.url("/")).header("authorization", "Basic %%%not-base64").send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = s.http.get(s.url("/")).header("authorization", basic("", INGEST_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = s.http.get(s.url("/")).bearer_auth(INGEST_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // The admin token as a bearer token still works, and any user name goes with Basic.
    let r = s.get_admin("/").await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<h2>Ledger</h2>"));
    let r = s.http.get(s.url("/")).header("authorization", basic("anyone", ADMIN_TOKEN)).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn ledger_values_are_escaped() {
    let s = TestServer::start().await;
    s.ga4.set_fault(Some(Fault::Status(500)));
    let mut e = purchase("x", 1);
    let id = "<script>alert(\"x&y\")</script>";
    e["event_id"] = json!(id);
    assert_eq!(s.post("/v1/events", &e).await.status(), 202);
    assert_eq!(s.settled(id).await, ["ga4-web:dead:attempts_exhausted"]);

    let escaped = "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;";
    let (status, _, html) = browse(&s, "/").await;
    assert_eq!(status, 200);
    assert!(html.contains(escaped), "{html}");
    assert!(!html.contains(id), "the raw id is in the page: {html}");
    assert_eq!(html.matches("<script>").count(), 1, "only the page's own reload script");

    let (status, _, timeline) = browse(&s, &format!("/?event={}", urlencode(id))).await;
    assert_eq!(status, 200);
    assert!(timeline.contains(&format!("<h2>Event <code>{escaped}</code></h2>")), "{timeline}");
    assert!(timeline.contains(&format!("value=\"{escaped}\"")), "the lookup form keeps the id, escaped");
    assert!(!timeline.contains("<script>"), "{timeline}");
}

#[tokio::test]
async fn the_measurement_pages_show_alerts_a_lateness_chart_and_coverage() {
    let s = TestServer::start_with("[[alerts]]\nname = \"backlog\"\nwhen = \"queue_depth\"\nabove = 1000\n").await;
    // Yesterday's and today's orders: the late ones make coloured bars.
    for (id, hours) in [("m1", 30), ("m2", 1), ("m3", 50)] {
        assert_eq!(s.post("/v1/events", &purchase(id, hours)).await.status(), 202);
        s.settled(&format!("order:{id}:order_paid")).await;
    }
    let (status, _, overview) = browse(&s, "/").await;
    assert_eq!(status, 200);
    assert!(overview.contains("<h2>Alerts</h2>") && overview.contains("Nothing fires."), "{overview}");
    assert!(overview.contains("href=\"/?view=late\"") && overview.contains("href=\"/?view=coverage\""));

    let (status, _, late) = browse(&s, "/?view=late").await;
    assert_eq!(status, 200);
    assert!(late.contains("<svg class=\"chart\""), "{late}");
    assert!(late.matches("<rect ").count() >= 2, "a bar per day with events: {late}");
    assert!(!late.contains("setInterval"), "measurement pages do not reload themselves");

    let (status, _, coverage) = browse(&s, "/?view=coverage").await;
    assert_eq!(status, 200);
    assert!(coverage.contains("<td>order_paid</td><td class=\"n\">3</td>"), "{coverage}");
    assert!(coverage.contains("<td>ga4-web</td>"), "{coverage}");

    // The same page in a real browser (saved as the server sent it: headless Chromium cannot
    // answer the Basic challenge): the chart renders, and the console stays free of errors.
    let profile = tempfile::tempdir().unwrap();
    let file = profile.path().join("late.html");
    std::fs::write(&file, &late).unwrap();
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(crate::capture::chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"])
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.path().join("profile").display()))
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(dom.contains("<svg class=\"chart\"") && dom.contains("<rect"), "{dom}\n{log}");
    let console_errors: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console_errors.is_empty(), "{console_errors:#?}");
}

/// The charts' figures over the API: per destination and hour, delivered, failed (rejected, dead,
/// in_doubt) and attempts that ended in a retry; the same on the overview as one chart per
/// destination; a window out of 1 to 168 hours is refused.
#[tokio::test]
async fn deliveries_over_time_count_what_ended_per_hour_on_the_api_and_the_charts() {
    let s = TestServer::start().await;
    assert_eq!(s.post("/v1/events", &purchase("ot-1", 1)).await.status(), 202);
    assert_eq!(s.settled("order:ot-1:order_paid").await, ["ga4-web:delivered:sent"]);
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("ot-2", 1)).await.status(), 202);
    assert_eq!(s.settled("order:ot-2:order_paid").await, ["ga4-web:dead:attempts_exhausted"]);
    let dead = s.event("order:ot-2:order_paid").await;
    let retries = dead["attempts"].as_array().unwrap().iter().filter(|a| a["outcome"] == "retry").count() as u64;
    assert!(retries >= 3, "{dead}");

    let r = s.get_admin("/v1/deliveries/over-time?hours=24").await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["hours"], 24);
    let counts = v["counts"].as_array().unwrap();
    assert!(counts.iter().all(|c| c["destination"] == "ga4-web"), "{v}");
    // Summed over the hours: the test may straddle an hour's end.
    let sum = |k: &str| counts.iter().map(|c| c[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("delivered"), sum("retried"), sum("failed")), (1, retries, 1), "{v}");
    let since = chrono::DateTime::parse_from_rfc3339(v["since"].as_str().unwrap()).unwrap();
    assert_eq!(since.timestamp() % 3600, 0, "the window starts on a whole hour");
    assert!(chrono::Utc::now().timestamp() - since.timestamp() <= 24 * 3600);

    for bad in ["hours=0", "hours=169", "hours=ten", "hours=24&days=1"] {
        let r = s.get_admin(&format!("/v1/deliveries/over-time?{bad}")).await;
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "invalid_query", "{bad}");
    }
    let r = s.http.get(s.url("/v1/deliveries/over-time")).bearer_auth(INGEST_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 403, "admin only");

    let (status, _, html) = browse(&s, "/").await;
    assert_eq!(status, 200);
    let chart = html.split("<figure class=\"over-time\" data-destination=\"ga4-web\">").nth(1).expect("a chart");
    let chart = &chart[..chart.find("</figure>").unwrap()];
    assert!(chart.contains(&format!("1 delivered · {retries} retried · 1 failed")), "{chart}");
    assert!(chart.contains("class=\"bar delivered\"") && chart.contains("class=\"bar failed\""), "{chart}");
    let health = html.find("<table class=\"health\">").unwrap();
    assert!(health < html.find("<figure class=\"over-time\"").unwrap(), "the charts follow the health lines");
    assert!(html.find("<figure class=\"over-time\"").unwrap() < html.find("<h2>Ledger</h2>").unwrap());
}
