//! The console's event page and its actions: replay and settle through HTML forms guarded by a
//! CSRF token (the same rules as the API and the CLI), attempt numbers that continue across
//! replays, the exact request each attempt sent (kept for `[ledger] keep_request_bodies_days`,
//! then only its hash), and what was joined from the identity bridge (names, never values).

use base64::Engine;
use serde_json::{json, Value};
use surety::sim::Fault;

use crate::support::{purchase, urlencode, TestServer, ADMIN_TOKEN};

const RAW_EMAIL: &str = "Jane.Doe@example.com";

fn basic() -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("ops:{ADMIN_TOKEN}")))
}

/// A browser that does not follow redirects, so the console's `303` can be seen.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn page(s: &TestServer, event_id: &str) -> (u16, String) {
    let r = browser()
        .get(s.url(&format!("/?event={}", urlencode(event_id))))
        .header("authorization", basic())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The CSRF token the event page put in its forms.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + "name=\"csrf\" value=\"".len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

async fn submit(s: &TestServer, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    browser().post(s.url(action)).header("authorization", basic()).form(fields).send().await.unwrap()
}

async fn state_of(s: &TestServer, event_id: &str) -> (i64, String) {
    let v = s.event(event_id).await;
    let d = &v["deliveries"][0];
    (d["id"].as_i64().unwrap(), d["state"].as_str().unwrap().to_owned())
}

fn attempt_numbers(v: &Value) -> Vec<u64> {
    v["attempts"].as_array().unwrap().iter().map(|a| a["attempt"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn replay_and_settle_from_the_console_need_the_forms_token_and_keep_the_ledgers_rules() {
    let s = TestServer::start().await;
    let id = "order:c1:order_paid";
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("c1", 1)).await.status(), 202);
    assert_eq!(s.settled(id).await, ["ga4-web:dead:attempts_exhausted"]);
    s.ga4.set_fault(None);
    let (delivery, _) = state_of(&s, id).await;
    let delivery_s = delivery.to_string();

    let (status, html) = page(&s, id).await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/console/replay\"") && html.contains("action=\"/console/settle\""), "{html}");
    let token = csrf_of(&html);

    // Without the token, with a forged one, or from another site's page: refused, unchanged.
    for csrf in [None, Some("1700000000.00ff"), Some("not-a-token")] {
        let mut fields = vec![("event", id), ("delivery_id", delivery_s.as_str())];
        if let Some(c) = csrf {
            fields.push(("csrf", c));
        }
        let r = submit(&s, "/console/replay", &fields).await;
        assert_eq!(r.status(), 403, "csrf {csrf:?}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "csrf_refused", "{problem}");
    }
    let r = browser()
        .post(s.url("/console/replay"))
        .header("authorization", basic())
        .header("sec-fetch-site", "cross-site")
        .form(&[("event", id), ("delivery_id", delivery_s.as_str()), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "another site's page may not post the form, even with a token");
    // Without the admin credential the token alone does nothing.
    let r = browser()
        .post(s.url("/console/replay"))
        .form(&[("event", id), ("delivery_id", delivery_s.as_str()), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(state_of(&s, id).await.1, "dead", "nothing was replayed");

    // With the page's token: replayed, and back to the event's page.
    let r = submit(&s, "/console/replay", &[("event", id), ("delivery_id", &delivery_s), ("csrf", &token)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/?event={}", urlencode(id)).as_str());
    assert_eq!(s.settled(id).await, ["ga4-web:delivered:sent"]);

    // Attempt numbers go on across the replay: four failed, the replay's is the fifth.
    let v = s.event(id).await;
    assert_eq!(attempt_numbers(&v), [1, 2, 3, 4, 5], "{v}");
    let (_, html) = page(&s, id).await;
    let lines = html.split("<h3>Attempts</h3>").nth(1).unwrap();
    let replayed_at = lines.find("replayed from dead:attempts_exhausted").expect("the replay is a line");
    let fourth = lines.find("<td class=\"n attempt\">4</td>").unwrap();
    let fifth = lines.find("<td class=\"n attempt\">5</td>").unwrap();
    assert!(fourth < replayed_at && replayed_at < fifth, "lines in time order: {lines}");
    assert_eq!(lines.matches("<td class=\"n\">500</td>").count(), 4);
    assert_eq!(lines.matches("HTTP 500").count(), 4, "each error once per attempt: {lines}");

    // Delivered: a replay is refused unless forced, as on the API and the CLI.
    let token = csrf_of(&html);
    let r = submit(&s, "/console/replay", &[("event", id), ("delivery_id", &delivery_s), ("csrf", &token)]).await;
    assert_eq!(r.status(), 409);
    let refused = r.text().await.unwrap();
    assert!(refused.contains("was not replayed: it is delivered"), "{refused}");
    assert_eq!(s.event(id).await["replays"].as_array().unwrap().len(), 1, "the refusal changed nothing");
    let settle = [("event", id), ("delivery_id", delivery_s.as_str()), ("csrf", token.as_str()), ("as", "delivered")];
    assert_eq!(submit(&s, "/console/settle", &settle).await.status(), 409, "a delivered delivery is not settled");

    let forced = [("event", id), ("delivery_id", delivery_s.as_str()), ("csrf", token.as_str()), ("force", "1")];
    assert_eq!(submit(&s, "/console/replay", &forced).await.status(), 303);
    assert_eq!(s.settled(id).await, ["ga4-web:delivered:sent"]);
    let v = s.event(id).await;
    let replays = v["replays"].as_array().unwrap();
    assert_eq!(replays.len(), 2);
    assert_eq!((replays[0]["by"].as_str(), replays[1]["by"].as_str()), (Some("console:ops"), Some("console:ops")));
    assert_eq!(
        (replays[1]["forced"].as_bool(), replays[1]["previous_state"].as_str()),
        (Some(true), Some("delivered"))
    );
    let last = v["attempts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["attempt"].as_u64(), last["forced"].as_bool()), (Some(6), Some(true)), "{v}");
    let (_, html) = page(&s, id).await;
    assert!(
        html.contains("<b>forced replay</b> from delivered:sent by <span class=\"by\">console:ops</span>"),
        "the forced replay and who made it are on the page: {html}"
    );
}

#[tokio::test]
async fn settling_from_the_console_is_recorded_with_who_and_why() {
    let s = TestServer::start().await;
    let id = "order:c2:order_paid";
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("c2", 1)).await.status(), 202);
    assert_eq!(s.settled(id).await, ["ga4-web:dead:attempts_exhausted"]);
    let (delivery, _) = state_of(&s, id).await;
    let delivery = delivery.to_string();
    let (_, html) = page(&s, id).await;
    let token = csrf_of(&html);
    let bad = [("event", id), ("delivery_id", delivery.as_str()), ("csrf", token.as_str()), ("as", "maybe")];
    let r = submit(&s, "/console/settle", &bad).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "invalid_form");
    let other = [("event", "order:nope:order_paid"), ("delivery_id", delivery.as_str()), ("csrf", token.as_str())];
    assert_eq!(submit(&s, "/console/replay", &other).await.status(), 404, "the delivery must be the page's");

    let form = [
        ("event", id),
        ("delivery_id", delivery.as_str()),
        ("csrf", token.as_str()),
        ("as", "delivered"),
        ("note", "seen in GA4 DebugView"),
    ];
    assert_eq!(submit(&s, "/console/settle", &form).await.status(), 303);
    let v = s.event(id).await;
    assert_eq!(v["deliveries"][0]["state"], "delivered");
    assert_eq!(v["deliveries"][0]["reason"], "settled_by_person");
    assert_eq!(v["settlements"][0]["by"], "admin token #1");
    let (_, html) = page(&s, id).await;
    assert!(html.contains("settled as delivered by admin token #1"), "{html}");
    assert!(html.contains("seen in GA4 DebugView"));
}

#[tokio::test]
async fn the_request_each_attempt_sent_is_shown_then_only_its_hash_after_the_period() {
    let s = TestServer::start().await;
    let id = "order:b1:order_paid";
    assert_eq!(s.post("/v1/events", &purchase("b1", 1)).await.status(), 202);
    assert_eq!(s.settled(id).await, ["ga4-web:delivered:sent"]);

    let v = s.event(id).await;
    let attempt = &v["attempts"][0];
    let body = attempt["request_body"].as_str().expect("the request body is kept");
    let hash = attempt["request_sha256"].as_str().unwrap().to_owned();
    assert_eq!(surety::core::pii::sha256_hex(body.as_bytes()), hash, "the body is exactly what was sent");
    let sent: Value = serde_json::from_str(body).unwrap();
    assert_eq!(sent["events"][0]["name"], "purchase", "{sent}");
    assert!(body.contains("sha256_email_address"), "personal fields go as hashes: {body}");
    assert!(!body.to_lowercase().contains(&RAW_EMAIL.to_lowercase()), "no raw email in the stored body");
    let (_, html) = page(&s, id).await;
    assert!(html.contains("<pre class=\"request\">"), "{html}");
    assert!(html.contains("sha256_email_address"));
    assert!(html.contains("The platform answered") || html.contains("No answer body"), "{html}");
    assert!(!html.to_lowercase().contains(&RAW_EMAIL.to_lowercase()));

    // A week later (the default period): the body is gone, its hash stays.
    let store = s.store().await;
    let ledger = surety::config::LedgerConfig::default();
    assert_eq!(ledger.keep_request_bodies_days, 7);
    let cancel = tokio_util::sync::CancellationToken::new();
    let now = chrono::Utc::now();
    let kept = surety::prune_request_bodies_all(store.as_ref(), ledger.bodies_cutoff(now), 10, &cancel).await.unwrap();
    assert_eq!(kept, 0, "a body younger than the period stays");
    let later = now + chrono::Duration::days(7) + chrono::Duration::minutes(1);
    let dropped =
        surety::prune_request_bodies_all(store.as_ref(), ledger.bodies_cutoff(later), 10, &cancel).await.unwrap();
    assert_eq!(dropped, 1);
    let v = s.event(id).await;
    assert!(v["attempts"][0].get("request_body").is_none(), "{v}");
    assert_eq!(v["attempts"][0]["request_sha256"], hash.as_str());
    let (_, html) = page(&s, id).await;
    assert!(!html.contains("<pre class=\"request\">"));
    assert!(html.contains(&format!("Sent a body with SHA-256 <code>{hash}</code> (no longer kept")), "{html}");
}

#[tokio::test]
async fn the_event_page_names_joined_fields_conflicts_and_a_refunds_order_without_raw_values() {
    let s = TestServer::start().await;
    let capture = json!({
        "subject": {"type": "order", "id": "j1"},
        "identity": {"email": RAW_EMAIL, "phone": "+49 30 1234567", "gclid": "gclid-j1"},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    });
    assert_eq!(s.post("/v1/identities", &capture).await.status(), 202);
    let mut order = purchase("j1", 2);
    order["identity"] = json!({"client_id": "555.j1"});
    order.as_object_mut().unwrap().remove("consent");
    assert_eq!(s.post("/v1/events", &order).await.status(), 202);
    let id = "order:j1:order_paid";
    s.settled(id).await;

    let (status, html) = page(&s, id).await;
    assert_eq!(status, 200);
    let joined = html.split("<h3>Joined from the identity bridge</h3>").nth(1).expect("joined section");
    let joined = &joined[..joined.find("<h3>").unwrap_or(joined.len())];
    for field in ["identity.email", "identity.phone", "identity.gclid", "consent.ad_user_data"] {
        assert!(joined.contains(&format!("<code>{field}</code>")), "{field} in {joined}");
    }
    assert!(joined.contains("<code>order:j1</code>"), "where it came from: {joined}");
    assert!(!joined.contains("gclid-j1"), "names only, no values: {joined}");
    let stored = s.event(id).await;
    let email_hash = stored["event"]["identity"]["email"].to_string();
    for raw in [RAW_EMAIL, "jane.doe@example.com", "1234567"] {
        assert!(!html.contains(raw), "raw {raw} on the page");
    }
    assert!(!joined.contains(email_hash.trim_matches('"')), "not even the hash in the joined list");

    // The same id with another value: a conflict, and the page says which field differed.
    let mut restated = order.clone();
    restated["value"] = json!(99.0);
    assert_eq!(s.post("/v1/events", &restated).await.status(), 409);
    let (_, html) = page(&s, id).await;
    assert!(html.contains("it differed in <code>value</code>;"), "{html}");

    // A refund of the order: the page links its order and says what it became per platform.
    let refund = json!({
        "kind": "refund_completed",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "subject": {"type": "order", "id": "j1"},
        "value": 20.0, "currency": "EUR",
        "identity": {"client_id": "555.j1"}
    });
    assert_eq!(s.post("/v1/events", &refund).await.status(), 202);
    let refund_id = "order:j1:refund_completed";
    assert_eq!(s.settled(refund_id).await, ["ga4-web:delivered:sent"]);
    let (_, html) = page(&s, refund_id).await;
    let order_part = html.split("<h3>Order</h3>").nth(1).expect("order section");
    assert!(
        order_part.contains("This refund_completed adjusts <a href=\"/?event=order%3Aj1%3Aorder_paid\">"),
        "{order_part}"
    );
    assert!(order_part.contains("<td>ga4-web</td><td>refund</td><td>delivered:sent</td>"), "{order_part}");
}

/// Runs Debian's headless Chromium on `url` and returns the DOM it ends with and its console log.
/// (on a blocking thread: the server under test runs on this test's runtime and must answer).
async fn chromium(profile: &std::path::Path, url: &str) -> (String, String) {
    let (profile, url) = (profile.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || run_chromium(&profile, &url)).await.unwrap()
}

fn run_chromium(profile: &std::path::Path, url: &str) -> (String, String) {
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg(crate::capture::chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"])
        .args(["--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"])
        .args(["--virtual-time-budget=5000", "--dump-dom"])
        .arg(format!("--user-data-dir={}", profile.join("profile").display()))
        .arg(url)
        .output()
        .expect("run chromium");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// In a real browser (the API open, as headless Chromium cannot answer a Basic challenge): the
/// event page renders its forms without console errors, and another site's page that submits the
/// replay form — with a token it copied — is refused by the browser's own `Sec-Fetch-Site`.
#[tokio::test]
async fn in_a_real_browser_the_event_page_is_clean_and_another_sites_form_is_refused() {
    let open = |toml: String| {
        toml.lines()
            .filter(|l| {
                !l.ends_with("_tokens = [\"env:SURETY_IT_INGEST_TOKEN\"]")
                    && !l.ends_with("_tokens = [\"env:SURETY_IT_ADMIN_TOKEN\"]")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let s = TestServer::start_tuned("", open).await;
    let id = "order:r1:order_paid";
    s.ga4.set_fault(Some(Fault::Status(500)));
    assert_eq!(s.post("/v1/events", &purchase("r1", 1)).await.status(), 202);
    assert_eq!(s.settled(id).await, ["ga4-web:dead:attempts_exhausted"]);
    s.ga4.set_fault(None);
    let (delivery, _) = state_of(&s, id).await;
    let profile = tempfile::tempdir().unwrap();

    let (dom, log) = chromium(profile.path(), &s.url(&format!("/?event={}", urlencode(id)))).await;
    assert!(dom.contains("action=\"/console/replay\"") && dom.contains("<h3>Attempts</h3>"), "{dom}\n{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    assert!(console.is_empty(), "{console:#?}");
    let token = csrf_of(&dom);

    // Another site's page with the form and the valid token, submitted on load.
    let attack = profile.path().join("attack.html");
    std::fs::write(
        &attack,
        format!(
            "<!doctype html><form id=f method=post action=\"{}\">\
             <input name=csrf value=\"{token}\"><input name=event value=\"{id}\">\
             <input name=delivery_id value=\"{delivery}\"></form>\
             <script>document.getElementById('f').submit()</script>",
            s.url("/console/replay")
        ),
    )
    .unwrap();
    let (dom, log) = chromium(profile.path(), &format!("file://{}", attack.display())).await;
    assert!(dom.contains("csrf_refused"), "the browser marked it cross-site and it was refused: {dom}\n{log}");
    assert_eq!(state_of(&s, id).await.1, "dead", "nothing was replayed");
    assert!(s.event(id).await["replays"].as_array().unwrap().is_empty());

    // The same form on Surety's own page works: a browser marks it same-origin.
    let r = browser()
        .post(s.url("/console/replay"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("csrf", token.as_str()), ("event", id), ("delivery_id", delivery.to_string().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(s.settled(id).await, ["ga4-web:delivered:sent"]);
}
