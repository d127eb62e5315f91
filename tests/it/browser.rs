//! The console in a real headless Chromium, driven over the DevTools protocol, against a running
//! Surety with three destinations: Google Ads halted (its token endpoint refuses the credentials),
//! Meta rejecting an event, GA4 healthy. At 1400×1000 the health lines say so with the
//! platform's error text and sit above the fold with the deliveries-over-time charts; the rejected
//! event's page refuses its replay form with the CSRF token taken out (403 `csrf_refused`, nothing
//! changed) and replays it through the form as served (a new attempt, recorded as the console's
//! user), as a POST without the token is refused; and no page logs a console error.
//!
//! The protocol goes over `--remote-debugging-pipe` (fd 3 in, fd 4 out, NUL-separated JSON)
//! rather than a WebSocket on `--remote-debugging-port`: the same CDP messages with no port to
//! discover and no WebSocket client to depend on. Every wait is bounded; Chromium is killed when
//! the test ends, pass or fail.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use crate::support::{purchase, urlencode, TestServer, ADMIN_TOKEN};

/// The longest any one protocol call or page load may take.
const WAIT: Duration = Duration::from_secs(20);
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 1000;
/// The Basic user name the browser signs in with: the replay is recorded as `console:<it>`.
const USER: &str = "ops";

/// A headless Chromium and one page target attached in flat mode.
struct Browser {
    child: Child,
    input: ChildStdin,
    messages: Receiver<Value>,
    next_id: u64,
    session: String,
    /// Protocol events not yet waited for.
    events: Vec<Value>,
    /// Console errors, exceptions and error log entries seen on any page.
    errors: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch() -> Self {
        let profile = tempfile::tempdir().expect("profile dir");
        // The shell hands our pipes to Chromium as fds 3 and 4, where `--remote-debugging-pipe`
        // reads commands and writes answers, and then becomes Chromium.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null"#)
            .arg(crate::capture::chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let input = child.stdin.take().expect("chromium's command pipe");
        let output = child.stdout.take().expect("chromium's answer pipe");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            let mut buf = Vec::new();
            while reader.read_until(0, &mut buf).is_ok_and(|n| n > 0) {
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                buf.clear();
            }
        });
        let mut b = Self {
            child,
            input,
            messages,
            next_id: 0,
            session: String::new(),
            events: Vec::new(),
            errors: Vec::new(),
            _profile: profile,
        };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = b.call("Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        b.session = attached["sessionId"].as_str().expect("sessionId").to_owned();
        for domain in ["Page", "Runtime", "Log", "Network"] {
            b.call(&format!("{domain}.enable"), json!({}));
        }
        let metrics = json!({"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false});
        b.call("Emulation.setDeviceMetricsOverride", metrics);
        b
    }

    /// Sends a command (to the page once attached) and waits for its answer; events that arrive
    /// meanwhile are kept.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            message["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).and_then(|()| self.input.flush()).expect("write to chromium");
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.next_message(deadline, method);
            if m["id"].as_u64() == Some(id) {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
            self.keep(m);
        }
    }

    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.messages.recv_timeout(left) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => panic!("chromium: no {waiting_for} within {WAIT:?}"),
            Err(RecvTimeoutError::Disconnected) => panic!("chromium closed its pipe waiting for {waiting_for}"),
        }
    }

    /// Files an event: console errors are noted, everything is kept for `wait_for`.
    fn keep(&mut self, m: Value) {
        let p = &m["params"];
        match m["method"].as_str().unwrap_or_default() {
            "Runtime.consoleAPICalled" if p["type"] == "error" => {
                let args: Vec<String> =
                    p["args"].as_array().into_iter().flatten().map(|a| a["value"].to_string()).collect();
                self.errors.push(format!("console.error: {}", args.join(" ")));
            }
            "Runtime.exceptionThrown" => self.errors.push(format!("exception: {}", p["exceptionDetails"])),
            "Log.entryAdded" if p["entry"]["level"] == "error" => {
                self.errors.push(format!("log: {} ({})", p["entry"]["text"], p["entry"]["url"]))
            }
            _ => {}
        }
        self.events.push(m);
    }

    /// Waits for the next `method` event (one already kept counts), and takes it.
    fn wait_for(&mut self, method: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
                return self.events.remove(i);
            }
            let m = self.next_message(deadline, method);
            self.keep(m);
        }
    }

    /// Loads `url` and waits for its load event.
    fn open(&mut self, url: &str) {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        let nav = self.call("Page.navigate", json!({"url": url}));
        assert!(nav.get("errorText").is_none(), "navigating to {url}: {nav}");
        self.wait_for("Page.loadEventFired");
    }

    /// Runs `expression` in the page (promises awaited) and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true, "awaitPromise": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn basic() -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{ADMIN_TOKEN}")))
}

/// Surety with GA4 (its own simulator), Meta and Google Ads, all three routed `order_paid`.
async fn start() -> (TestServer, surety::platforms::meta::sim::MetaSim, surety::platforms::google_ads::sim::GoogleAdsSim)
{
    let meta = surety::platforms::meta::sim::start().await.unwrap();
    let google = surety::platforms::google_ads::sim::start().await.unwrap();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str, value: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, value).unwrap();
        format!("file:{}", path.display())
    };
    let extra = format!(
        r#"
[[destinations]]
name = "meta"
type = "meta"
pixel_id = "1234567890"
access_token = "{meta_token}"
base_url = "{meta_url}"

[[destinations]]
name = "google-ads"
type = "google_ads"
customer_id = "123-456-7890"
service_account_key = "{google_key}"
base_url = "{google_url}"
token_url = "{google_token_url}"

[catalog.order_paid.meta]
event = "Purchase"
[catalog.order_paid.google-ads]
event = "111"
"#,
        meta_token = secret("meta-token", "meta-test-token"),
        meta_url = meta.base_url,
        google_key = secret("google-key.json", surety::platforms::google_ads::sim::TEST_SERVICE_ACCOUNT_JSON),
        google_url = google.base_url,
        google_token_url = google.token_url,
    );
    let s = TestServer::start_custom(dir, ga4, "", &extra).await;
    (s, meta, google)
}

fn delivery<'a>(event: &'a Value, destination: &str) -> &'a Value {
    event["deliveries"].as_array().unwrap().iter().find(|d| d["destination"] == destination).expect(destination)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_chromium_says_what_is_wrong_above_the_fold_and_replays_through_its_form() {
    let (s, meta, google) = start().await;
    google.state().refuse_tokens(Some("invalid_grant"));
    // Meta's answer to the first request: code 100, an invalid parameter (the event is rejected).
    meta.state().fail_next_with_error(1, 100, None, false);
    let id = "order:2001:order_paid";
    assert_eq!(s.post("/v1/events", &purchase("2001", 1)).await.status(), 202);
    crate::support::eventually("GA4 delivered, Meta rejected, Google Ads halted", || async {
        let v = s.event(id).await;
        let state = |d: &str| delivery(&v, d)["state"].as_str().unwrap_or_default().to_owned();
        let halted = s.get_admin("/metrics").await.text().await.unwrap_or_default();
        state("ga4-web") == "delivered"
            && state("meta") == "rejected"
            && halted.contains(r#"surety_circuit_open{destination="google-ads"} 1"#)
    })
    .await;
    let before = s.event(id).await;
    let meta_delivery = delivery(&before, "meta")["id"].as_i64().unwrap();
    let meta_attempts =
        before["attempts"].as_array().unwrap().iter().filter(|a| a["delivery_id"] == meta_delivery).count();

    let mut b = tokio::task::block_in_place(Browser::launch);
    b.call("Network.setExtraHTTPHeaders", json!({"headers": {"Authorization": basic()}}));

    // The overview: three health lines and three charts, all above the fold.
    b.open(&s.url("/"));
    let overview = b.eval(
        r#"(() => {
            const rows = [...document.querySelectorAll('table.health tbody tr')].map(r => ({
                destination: r.dataset.destination, health: r.dataset.health, text: r.innerText,
                bottom: r.getBoundingClientRect().bottom }));
            const charts = [...document.querySelectorAll('figure.over-time')].map(f => ({
                destination: f.dataset.destination, svg: !!f.querySelector('svg'),
                bars: f.querySelectorAll('svg rect.bar').length, bottom: f.getBoundingClientRect().bottom }));
            return {rows, charts, innerHeight: window.innerHeight, innerWidth: window.innerWidth};
        })()"#,
    );
    assert_eq!((overview["innerWidth"].as_u64(), overview["innerHeight"].as_u64()), (Some(1400), Some(1000)));
    let row = |d: &str| overview["rows"].as_array().unwrap().iter().find(|r| r["destination"] == d).cloned().expect(d);
    let (halted, rejecting, healthy) = (row("google-ads"), row("meta"), row("ga4-web"));
    assert_eq!(halted["health"], "halted (credentials refused)", "{overview}");
    assert!(halted["text"].as_str().unwrap().contains("invalid_grant"), "Google's own error: {halted}");
    assert_eq!(rejecting["health"], "failing", "{overview}");
    assert!(rejecting["text"].as_str().unwrap().contains("Meta error 100"), "Meta's own error: {rejecting}");
    assert_eq!(healthy["health"], "delivering", "{overview}");
    let charts = overview["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 3, "{overview}");
    for c in charts {
        assert_eq!(c["svg"], true, "{c}");
    }
    let bars = |d: &str| charts.iter().find(|c| c["destination"] == d).map(|c| c["bars"].as_u64().unwrap()).expect(d);
    assert!(bars("ga4-web") >= 1 && bars("meta") >= 1, "delivered and failed bars: {overview}");
    for el in overview["rows"].as_array().unwrap().iter().chain(charts) {
        let bottom = el["bottom"].as_f64().unwrap();
        assert!(bottom <= f64::from(HEIGHT), "below the fold at 1400×1000: {el}");
    }

    // The rejected event's page: Meta's replay form with its CSRF token taken out is refused,
    // and changes nothing. (The browser reports the 403 answer as a failed load, and on that
    // problem+json document, which is no HTML page with an icon, asks for /favicon.ico: those
    // errors are expected here, and only those.)
    let page = s.url(&format!("/?event={}", urlencode(id)));
    let submit = |drop_token: bool| {
        format!(
            r#"(() => {{
                const form = [...document.querySelectorAll('form[action="/console/replay"]')]
                    .find(f => f.querySelector('input[name=delivery_id]').value === '{meta_delivery}');
                if (!form) return false;
                if ({drop_token}) form.querySelector('input[name=csrf]').remove();
                form.querySelector('button[type=submit]').click();
                return true;
            }})()"#
        )
    };
    b.open(&page);
    assert_eq!(b.eval(&submit(true)), true, "the rejected delivery has a replay form");
    b.wait_for("Page.loadEventFired");
    let refused = b.eval("new Promise(r => setTimeout(() => r(document.body.innerText), 300))");
    assert!(refused.as_str().unwrap().contains("csrf_refused"), "{refused}");
    let expected: Vec<String> = b.errors.drain(..).collect();
    assert!(
        expected.iter().all(|e| e.contains("status of 403") || e.contains("/favicon.ico")),
        "only the refused form's load failed: {expected:#?}"
    );
    assert_eq!(delivery(&s.event(id).await, "meta")["state"], "rejected", "nothing was replayed");

    // With its token: replayed, and back on the event's page.
    b.open(&page);
    assert_eq!(b.eval(&submit(false)), true);
    b.wait_for("Page.loadEventFired");
    let landed = b.eval("location.pathname + location.search");
    assert_eq!(landed, format!("/?event={}", urlencode(id)).as_str(), "back on the event's page");
    crate::support::eventually("the replay sent Meta's delivery again", || async {
        let v = s.event(id).await;
        let attempts = v["attempts"].as_array().unwrap().iter().filter(|a| a["delivery_id"] == meta_delivery).count();
        attempts > meta_attempts && delivery(&v, "meta")["state"] == "delivered"
    })
    .await;
    let after = s.event(id).await;
    let replays = after["replays"].as_array().unwrap();
    assert_eq!(replays.len(), 1, "{after}");
    assert_eq!(replays[0]["by"], format!("console:{USER}"), "who replayed is recorded: {after}");
    b.open(&s.url(&format!("/?event={}", urlencode(id))));
    let timeline = b.eval("document.body.innerText");
    assert!(timeline.as_str().unwrap().contains(&format!("by console:{USER}")), "{timeline}");

    // The same form without its CSRF token is refused.
    let html = s
        .http
        .get(s.url(&format!("/?event={}", urlencode(id))))
        .header("authorization", basic())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"csrf\""), "the page's forms carry a token");
    let r = s
        .http
        .post(s.url("/console/replay"))
        .header("authorization", basic())
        .form(&[("event", id), ("delivery_id", meta_delivery.to_string().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "csrf_refused");

    // Let late console messages arrive, then: none was an error, on any page.
    b.eval("new Promise(r => setTimeout(() => r(true), 300))");
    assert!(b.errors.is_empty(), "console errors: {:#?}", b.errors);
    drop(b);
    s.stop().await;
    drop(meta);
    google.shutdown().await;
}

/// The measurement and find pages (reconcile, late arrivals, coverage, search, the event list) in
/// the same browser: each renders what the ledger holds — the reconcile page its unexplained
/// mismatch linked to the event, the lateness chart its bars, coverage its counts, search and the
/// list their orders — and none logs a console error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_measurement_and_find_pages_render_in_chromium_without_console_errors() {
    let s = TestServer::start().await;
    let mut occurred = Vec::new();
    for (order, hours) in [("3001", 1), ("3002", 30), ("3003", 50)] {
        let event = purchase(order, hours);
        occurred.push((order, event["occurred_at"].as_str().unwrap().to_owned()));
        assert_eq!(s.post("/v1/events", &event).await.status(), 202);
        s.settled(&format!("order:{order}:order_paid")).await;
    }
    // The source of truth also has an order that never reached Surety: one unexplained mismatch.
    let mut source = String::new();
    for (order, at) in occurred.iter().map(|(o, a)| (*o, a.as_str())).chain([("3999", occurred[0].1.as_str())]) {
        source.push_str(
            &json!({"event_id": format!("order:{order}:order_paid"), "occurred_at": at, "value": 59.9, "currency": "EUR"})
                .to_string(),
        );
        source.push('\n');
    }
    let r = s.post_admin("/v1/reconcile", &json!({"source": {"format": "ndjson", "content": source}})).await;
    assert_eq!(r.status(), 200);

    let mut b = tokio::task::block_in_place(Browser::launch);
    b.call("Network.setExtraHTTPHeaders", json!({"headers": {"Authorization": basic()}}));
    let pages: [(&str, &str); 5] = [
        ("/?view=reconcile", r#"[...document.querySelectorAll('a')].some(a => a.href.includes('order%3A3999'))"#),
        ("/?view=late", r#"document.querySelectorAll('svg.chart rect').length >= 2"#),
        ("/?view=coverage", r#"document.body.innerText.includes('order_paid')"#),
        ("/?view=search&q=3002", r#"document.body.innerText.includes('order:3002:order_paid')"#),
        ("/?view=events", r#"['3001', '3002', '3003'].every(o => document.body.innerText.includes('order:' + o))"#),
    ];
    for (path, shows) in pages {
        b.open(&s.url(path));
        let text = b.eval("document.body.innerText");
        assert_eq!(b.eval(shows), true, "{path} does not show what the ledger holds:\n{text}");
    }
    b.eval("new Promise(r => setTimeout(() => r(true), 300))");
    assert!(b.errors.is_empty(), "console errors: {:#?}", b.errors);
    drop(b);
    s.stop().await;
}
