//! The browser side of the join: capture keys, CORS, the per-address limit, the never-overwrite
//! rule for browser captures, and `capture.js` run in a real headless Chromium against a page
//! with a stub `gtag`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::TestServer;

const CAPTURE_KEY: &str = "pk_test_capture";
/// The origin the test page is served from (its port is bound before the server starts).
fn auth_tuning(origin: &str, per_minute: u32) -> impl Fn(String) -> String + '_ {
    move |text: String| {
        text.replacen(
            "admin_tokens = [\"env:SURETY_IT_ADMIN_TOKEN\"]",
            &format!(
                "admin_tokens = [\"env:SURETY_IT_ADMIN_TOKEN\"]\ncapture_keys = [\"{CAPTURE_KEY}\"]\n\
                 capture_origins = [\"{origin}\"]\ncapture_per_minute = {per_minute}"
            ),
            1,
        )
    }
}

fn order_paid(order: &str) -> Value {
    json!({
        "kind": "order_paid",
        "occurred_at": (chrono::Utc::now() - chrono::Duration::minutes(5)).to_rfc3339(),
        "subject": {"type": "order", "id": order},
        "value": 59.9, "currency": "EUR"
    })
}

async fn post_with_key(s: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    s.http.post(s.url(path)).bearer_auth(CAPTURE_KEY).json(body).send().await.expect("request")
}

#[tokio::test]
async fn a_forged_browser_capture_cannot_overwrite_an_existing_order() {
    let s = TestServer::start_tuned("", auth_tuning("https://shop.example", 60)).await;
    let server = json!({
        "subject": {"type": "order", "id": "7001"},
        "identity": {"client_id": "1111111111.1700000000"},
        "consent": {"analytics": "denied"}
    });
    assert_eq!(s.post("/v1/identities", &server).await.status(), 202);
    let forged = json!({
        "subject": {"type": "order", "id": "7001"},
        "identity": {"client_id": "GA1.1.666.666", "session_id": "1700000000", "user_id": "attacker"},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    });
    let r = post_with_key(&s, "/v1/identities", &forged).await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap_or_default());

    assert_eq!(s.post("/v1/events", &order_paid("7001")).await.status(), 202);
    let v = s.event("order:7001:order_paid").await;
    let event = &v["event"];
    assert_eq!(event["identity"]["client_id"], "1111111111.1700000000", "the server's client id stands");
    assert_eq!(event["consent"]["analytics"], "denied", "the server's consent stands");
    assert_eq!(event["identity"]["session_id"], "1700000000", "what the server did not state is added");
    assert_eq!(event["consent"]["ad_user_data"], "granted");

    // A later server-side capture still replaces what it states.
    let server = json!({"subject": {"type": "order", "id": "7001"}, "identity": {"user_id": "u-1"}});
    assert_eq!(s.post("/v1/identities", &server).await.status(), 202);
    assert_eq!(
        s.post(
            "/v1/events",
            &json!({"kind": "refund_completed", "occurred_at": chrono::Utc::now().to_rfc3339(),
        "subject": {"type": "order", "id": "7001"}})
        )
        .await
        .status(),
        202
    );
    assert_eq!(s.event("order:7001:refund_completed").await["event"]["identity"]["user_id"], "u-1");
}

#[tokio::test]
async fn a_capture_key_may_only_post_identities_within_its_allowance() {
    let s = TestServer::start_tuned("", auth_tuning("https://shop.example", 2)).await;
    let r = post_with_key(&s, "/v1/events", &order_paid("7002")).await;
    assert_eq!(r.status(), 403);
    let r = s.http.get(s.url("/v1/deliveries")).bearer_auth(CAPTURE_KEY).send().await.unwrap();
    assert_eq!(r.status(), 403);

    let capture = json!({"subject": {"type": "order", "id": "7002"}, "identity": {"client_id": "1.2"}});
    assert_eq!(post_with_key(&s, "/v1/identities", &capture).await.status(), 202);
    assert_eq!(post_with_key(&s, "/v1/identities", &capture).await.status(), 202);
    let r = post_with_key(&s, "/v1/identities", &capture).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "rate_limited");
    // The server's own captures are not the browser's allowance.
    assert_eq!(s.post("/v1/identities", &capture).await.status(), 202);
}

#[tokio::test]
async fn cors_admits_only_the_configured_origins() {
    let s = TestServer::start_tuned("", auth_tuning("https://shop.example", 60)).await;
    let preflight = |origin: &'static str| {
        s.http
            .request(reqwest::Method::OPTIONS, s.url("/v1/identities"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,content-type")
            .send()
    };
    let ok = preflight("https://shop.example").await.unwrap();
    assert_eq!(ok.headers().get("access-control-allow-origin").unwrap(), "https://shop.example");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let script = s.http.get(s.url("/v1/capture.js")).send().await.unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    assert!(script.text().await.unwrap().contains("surety.capture"));
}

// ---- capture.js in a real browser ----

pub(crate) fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output() {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!("no chromium on PATH: run scripts/install_chromium.sh (.ci/run does)");
}

/// A checkout page: a stub `gtag` (or none), capture.js from Surety, and `surety.capture` with the
/// page's consent; the result is written into `#result`.
fn page(surety: &str, order: &str, analytics: &str, with_gtag: bool) -> String {
    let gtag = if with_gtag {
        r#"window.gtag = function (command, target, field, callback) {
             if (command !== "get" || target !== "G-TEST123") { return; }
             setTimeout(function () {
               callback(field === "client_id" ? "1234567890.1700000000" : field === "session_id" ? 1700000123 : undefined);
             }, 10);
           };"#
    } else {
        ""
    };
    format!(
        r#"<!doctype html><html><body><pre id="result">pending</pre>
<script>{gtag}</script>
<script src="{surety}/v1/capture.js"></script>
<script>
surety.capture({{key: "{CAPTURE_KEY}", measurementId: "G-TEST123", subject: {{type: "order", id: "{order}"}},
                 consent: {{analytics_storage: "{analytics}", ad_user_data: "granted", ad_personalization: "denied"}}}})
  .then(function (r) {{ document.getElementById("result").textContent = JSON.stringify(r); }},
        function (e) {{ document.getElementById("result").textContent = "error " + e; }});
</script></body></html>"#
    )
}

/// Loads `url` in headless Chromium and returns what the page wrote into `#result`.
fn run_page(url: &str) -> Value {
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    let result = dom
        .split("<pre id=\"result\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("no #result in the page: {dom}\n{}", String::from_utf8_lossy(&out.stderr)));
    let text = result.replace("&quot;", "\"").replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("the page wrote {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capture_js_in_chromium_posts_ids_only_with_analytics_consent() {
    // The page is served from its own origin, so the browser applies CORS as on a real shop.
    let pages = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", pages.local_addr().unwrap());
    let s = TestServer::start_tuned("", auth_tuning(&origin, 60)).await;
    let surety = s.base.clone();
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::get(move |axum::extract::Path(name): axum::extract::Path<String>| {
            let surety = surety.clone();
            async move {
                let html = match name.as_str() {
                    "granted" => page(&surety, "B-1", "granted", true),
                    "denied" => page(&surety, "B-2", "denied", true),
                    _ => page(&surety, "B-3", "granted", false),
                };
                axum::response::Html(html)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(pages, app).await });

    let granted = tokio::task::spawn_blocking({
        let url = format!("{origin}/granted");
        move || run_page(&url)
    })
    .await
    .unwrap();
    assert_eq!(granted, json!({"sent": true, "status": 202}));
    let denied = tokio::task::spawn_blocking({
        let url = format!("{origin}/denied");
        move || run_page(&url)
    })
    .await
    .unwrap();
    assert_eq!(denied["sent"], false, "{denied}");
    let absent = tokio::task::spawn_blocking({
        let url = format!("{origin}/no-gtag");
        move || run_page(&url)
    })
    .await
    .unwrap();
    assert_eq!(absent["sent"], false, "{absent}");

    // What Surety stored: the paid order joins the browser's ids and consent...
    for order in ["B-1", "B-2", "B-3"] {
        assert_eq!(s.post("/v1/events", &order_paid(order)).await.status(), 202);
    }
    let event = s.event("order:B-1:order_paid").await["event"].clone();
    assert_eq!(event["identity"]["client_id"], "1234567890.1700000000");
    assert_eq!(event["identity"]["session_id"], "1700000123");
    assert_eq!(
        event["consent"],
        json!({"analytics": "granted", "ad_user_data": "granted", "ad_personalization": "denied"})
    );
    // ...and nothing was captured where consent was denied or gtag was absent.
    for order in ["B-2", "B-3"] {
        let event = s.event(&format!("order:{order}:order_paid")).await["event"].clone();
        assert!(event["identity"].get("client_id").is_none(), "{order}: {event}");
        assert!(event.get("joined").is_none(), "{order}: {event}");
    }
    assert_eq!(s.settled("order:B-1:order_paid").await, ["ga4-web:delivered:sent"]);
    // The timeline shows how old the stitched session was when GA4 got the event.
    let attempt = s.event("order:B-1:order_paid").await["attempts"][0].clone();
    assert!(attempt["detail"].as_str().unwrap_or_default().contains("session_age_secs="), "{attempt}");
    let sent = s.ga4.events_named("purchase");
    assert_eq!(sent.len(), 1, "only the captured order has a client id for GA4");
    assert_eq!(sent[0].params["session_id"], "1700000123");
}
