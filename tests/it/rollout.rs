//! Rolling out on a small scope: destinations in `mode = "validate"` (checked against each
//! platform's validation route, nothing counted, `skipped:validate_only`), `sample` limits
//! (`skipped:not_sampled`), the release of both by a replay once the configuration widens, and
//! `surety destinations test`.

use std::process::Command;

use serde_json::{json, Value};
use surety::platforms::google_ads::sim::{Endpoint as AdsEndpoint, GoogleAdsSim, TEST_SERVICE_ACCOUNT_JSON};
use surety::platforms::linkedin::sim::{LinkedinSim, RuleAccess};
use surety::platforms::meta::sim::MetaSim;

use crate::support::{purchase, TestServer};

/// A file holding `value`, as a `file:` secret reference.
fn secret(dir: &std::path::Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    format!("file:{}", path.display())
}

/// Meta and Google Ads destinations on their simulators, with `mode` (empty: the default).
fn meta_and_ads(dir: &std::path::Path, meta: &MetaSim, ads: &GoogleAdsSim, mode: &str) -> String {
    format!(
        r#"
[[destinations]]
name = "meta"
type = "meta"
pixel_id = "1234567890"
access_token = "{meta_token}"
base_url = "{meta_url}"
{mode}

[[destinations]]
name = "google-ads"
type = "google_ads"
customer_id = "123-456-7890"
service_account_key = "{key}"
base_url = "{ads_url}"
token_url = "{ads_token_url}"
status_poll_delay_secs = 3600
{mode}

[catalog.order_paid.meta]
event = "Purchase"
[catalog.order_paid.google-ads]
event = "111"
"#,
        meta_token = secret(dir, "meta-token", "meta-test-token"),
        meta_url = meta.base_url,
        key = secret(dir, "google-key.json", TEST_SERVICE_ACCOUNT_JSON),
        ads_url = ads.base_url,
        ads_token_url = ads.token_url,
    )
}

/// Stops `s` and starts it again on the same ledger (SQLite file or PostgreSQL database) and
/// simulator, with the GA4 destination at its defaults and `extra` added: the configuration
/// changed, nothing re-ingested.
async fn restart(s: TestServer, extra: &str) -> TestServer {
    let postgres = s.postgres.clone();
    let (dir, ga4) = s.stop().await;
    match postgres {
        Some(url) => {
            let mut s = TestServer::start_postgres(ga4, &url, extra, |text| text).await;
            // The secret files live in the first folder: keep it.
            s.dir = dir;
            s
        }
        None => TestServer::start_custom(dir, ga4, "", extra).await,
    }
}

async fn deliveries(s: &TestServer, id: &str) -> Vec<Value> {
    s.event(id).await["deliveries"].as_array().unwrap().clone()
}

async fn replay_skipped(s: &TestServer) -> Value {
    let r = s.post_admin("/v1/deliveries/replay", &json!({"state": "skipped"})).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn validate_mode_counts_nothing_and_a_replay_after_going_live_delivers_once() {
    let meta = surety::platforms::meta::sim::start().await.unwrap();
    let ads = surety::platforms::google_ads::sim::start().await.unwrap();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let validate = meta_and_ads(dir.path(), &meta, &ads, "mode = \"validate\"");
    let live = meta_and_ads(dir.path(), &meta, &ads, "");
    let s = TestServer::start_custom(dir, ga4, "mode = \"validate\"", &validate).await;

    assert_eq!(s.post("/v1/events", &purchase("v1", 1)).await.status(), 202);
    let mut states = s.settled("order:v1:order_paid").await;
    states.sort();
    assert_eq!(
        states,
        ["ga4-web:skipped:validate_only", "google-ads:skipped:validate_only", "meta:skipped:validate_only"]
    );
    for d in deliveries(&s, "order:v1:order_paid").await {
        let said = d["messages"].to_string();
        assert!(said.contains("the platform's verdict: valid") && said.contains("nothing was counted"), "{d}");
    }
    // Each platform was asked on its validation route, and counted nothing.
    assert_eq!(s.ga4.event_count(), 0);
    assert!(s.ga4.requests().iter().any(|r| r.endpoint == surety::platforms::ga4::sim::Endpoint::Debug));
    assert_eq!((meta.event_count(), meta.test_event_count()), (0, 1));
    assert_eq!(ads.event_count(), 0);
    let ingests = ads.requests_to(AdsEndpoint::Ingest);
    assert!(ingests.iter().all(|r| r.body.as_ref().is_some_and(|b| b["validateOnly"] == json!(true))), "{ingests:?}");

    // The console's health line says which destinations validate.
    let page = s.get_admin("/").await.text().await.unwrap();
    for name in ["ga4-web", "meta", "google-ads"] {
        assert!(page.contains(&format!("data-destination=\"{name}\" data-health")), "{name}");
    }
    assert_eq!(page.matches("data-mode=\"validate\"").count(), 3, "{page}");
    assert!(page.contains(">validate mode</span>"));

    // A refusal is a verdict too: still validate_only, with what the platform said.
    meta.expire_token();
    assert_eq!(s.post("/v1/events", &purchase("v2", 1)).await.status(), 202);
    s.settled("order:v2:order_paid").await;
    let refused = deliveries(&s, "order:v2:order_paid").await;
    let meta_row = refused.iter().find(|d| d["destination"] == "meta").unwrap();
    assert_eq!(meta_row["reason"], "validate_only");
    assert!(meta_row["messages"].to_string().contains("credentials or access refused"), "{meta_row}");
    meta.accept_any_token();

    // Live now: restart with the same ledger, and release what validate mode held back.
    let s = restart(s, &live).await;
    let report = replay_skipped(&s).await;
    assert_eq!(report["replayed"].as_array().unwrap().len(), 6, "{report}");
    for id in ["order:v1:order_paid", "order:v2:order_paid"] {
        let mut states = s.settled(id).await;
        states.sort();
        assert_eq!(states, ["ga4-web:delivered:sent", "google-ads:delivered:sent", "meta:delivered:accepted"]);
    }
    assert_eq!((s.ga4.event_count(), meta.event_count(), ads.event_count()), (2, 2, 2));
    // Delivered once: a second replay of skipped deliveries finds nothing to release.
    let again = replay_skipped(&s).await;
    assert_eq!(again["replayed"], json!([]));
    assert_eq!(s.ga4.event_count(), 2);
}

#[tokio::test]
async fn without_a_validation_route_validate_mode_checks_locally_and_says_so() {
    let linkedin = surety::platforms::linkedin::sim::start().await.unwrap();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        r#"
[[destinations]]
name = "linkedin"
type = "linkedin"
access_token = "{token}"
base_url = "{url}"
mode = "validate"

[catalog.order_paid.linkedin]
event = "123456"
"#,
        token = secret(dir.path(), "li-token", "li-test-token"),
        url = linkedin.base_url,
    );
    let s = TestServer::start_custom(dir, ga4, "", &extra).await;
    assert_eq!(s.post("/v1/events", &purchase("li1", 1)).await.status(), 202);
    let mut states = s.settled("order:li1:order_paid").await;
    states.sort();
    assert_eq!(states, ["ga4-web:delivered:sent", "linkedin:skipped:validate_only"]);
    let rows = deliveries(&s, "order:li1:order_paid").await;
    let row = rows.iter().find(|d| d["destination"] == "linkedin").unwrap();
    let said = row["messages"].to_string();
    assert!(said.contains("LinkedIn has no validation route") && said.contains("local checks only"), "{row}");
    assert!(linkedin.requests().is_empty(), "nothing was sent to LinkedIn");
    assert_eq!(linkedin.conversion_count(), 0);
}

fn refund(order: &str) -> Value {
    json!({
        "kind": "refund_completed",
        "occurred_at": chrono::Utc::now().to_rfc3339(),
        "subject": {"type": "order", "id": order},
        "value": 59.9, "currency": "EUR",
        "identity": {"client_id": format!("555.{order}")},
        "consent": {"analytics": "granted", "ad_user_data": "granted"}
    })
}

#[tokio::test]
async fn a_sample_holds_back_kinds_and_subjects_until_a_replay_under_a_wider_sample() {
    // Two subjects, one in a 50% share and one out of it (the hash is fixed).
    let ids: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
    let inside = ids.iter().find(|id| surety::core::plan::subject_in_share("order", id, 0.5)).unwrap().clone();
    let outside = ids.iter().find(|id| !surety::core::plan::subject_in_share("order", id, 0.5)).unwrap().clone();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sample = r#"sample = { kinds = ["order_paid"], share = 0.5 }"#;
    let s = TestServer::start_custom(dir, ga4, sample, "").await;

    for order in [&inside, &outside] {
        assert_eq!(s.post("/v1/events", &purchase(order, 1)).await.status(), 202);
        assert_eq!(s.post("/v1/events", &refund(order)).await.status(), 202);
    }
    // An event outside the window stays outside_window: a sample never hides that.
    assert_eq!(s.post("/v1/events", &purchase("late", 80)).await.status(), 202);
    assert_eq!(s.settled(&format!("order:{inside}:order_paid")).await, ["ga4-web:delivered:sent"]);
    assert_eq!(s.settled(&format!("order:{inside}:refund_completed")).await, ["ga4-web:skipped:not_sampled"]);
    // Every event of the subject outside the share goes the same way.
    assert_eq!(s.settled(&format!("order:{outside}:order_paid")).await, ["ga4-web:skipped:not_sampled"]);
    assert_eq!(s.settled(&format!("order:{outside}:refund_completed")).await, ["ga4-web:skipped:not_sampled"]);
    assert_eq!(s.settled("order:late:order_paid").await, ["ga4-web:skipped:outside_window"]);
    let held = deliveries(&s, &format!("order:{outside}:order_paid")).await;
    assert!(held[0]["messages"].to_string().contains("share = 0.5"), "{held:?}");
    assert_eq!(s.ga4.event_count(), 1);
    let page = s.get_admin("/").await.text().await.unwrap();
    assert!(page.contains("data-mode=\"live\"") && page.contains("sample: kinds order_paid; share 50%"), "{page}");

    // Replayed under the same sample: planned again, and held back again.
    let report = replay_skipped(&s).await;
    assert_eq!(report["replayed"].as_array().unwrap().len(), 3, "{report}");
    let refused = report["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "only outside_window is refused: {report}");
    assert_eq!(s.settled(&format!("order:{outside}:order_paid")).await, ["ga4-web:skipped:not_sampled"]);
    assert_eq!(s.ga4.event_count(), 1);

    // The sample widened: restart, replay, and what it held back is sent, once each.
    let s = restart(s, "").await;
    replay_skipped(&s).await;
    for id in [
        format!("order:{inside}:refund_completed"),
        format!("order:{outside}:order_paid"),
        format!("order:{outside}:refund_completed"),
    ] {
        assert_eq!(s.settled(&id).await, ["ga4-web:delivered:sent"], "{id}");
    }
    assert_eq!(s.settled("order:late:order_paid").await, ["ga4-web:skipped:outside_window"]);
    assert_eq!(s.ga4.event_count(), 4);
}

#[test]
fn check_config_explains_a_bad_sample_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    crate::support::init_env();
    let text = crate::support::config_toml_with(
        &dir.path().join("surety.db"),
        "http://127.0.0.1:9",
        "sample = { kinds = [\"order_shipped\", \"Bad Kind\"], share = 1.5 }",
        "",
    );
    std::fs::write(&path, text).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_surety")).args(["check-config", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "destinations.ga4-web.sample.kinds: the catalog routes no 'order_shipped' to this destination",
        "destinations.ga4-web.sample.kinds: the kind must be",
        "destinations.ga4-web.sample.share: 1.5 is not a share between 0 and 1",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }
    let bad_mode =
        crate::support::config_toml_with(&dir.path().join("surety.db"), "http://127.0.0.1:9", "mode = \"dry\"", "");
    std::fs::write(&path, bad_mode).unwrap();
    let out =
        Command::new(env!("CARGO_BIN_EXE_surety")).args(["check-config", "--config"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("mode") && text.contains("validate"), "{text}");
}

async fn surety(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || Command::new(env!("CARGO_BIN_EXE_surety")).args(args).output().unwrap())
        .await
        .unwrap()
}

/// Five destinations on four simulators: Meta's pixel unknown, LinkedIn's rule missing, one GA4
/// secret unset.
async fn four(
    dir: &std::path::Path,
) -> (String, MetaSim, GoogleAdsSim, LinkedinSim, surety::platforms::ga4::sim::Ga4Sim) {
    let meta = surety::platforms::meta::sim::start().await.unwrap();
    meta.only_pixels(&["999"]);
    let ads = surety::platforms::google_ads::sim::start().await.unwrap();
    let linkedin = surety::platforms::linkedin::sim::start().await.unwrap();
    linkedin.set_conversion_rules(&[("123456", RuleAccess::Enabled)]);
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let extra = format!(
        r#"{meta_and_ads}
[[destinations]]
name = "linkedin"
type = "linkedin"
access_token = "{li_token}"
base_url = "{li_url}"

[catalog.order_paid.linkedin]
event = "654321"

[[destinations]]
name = "ga4-unset"
type = "ga4"
measurement_id = "G-OTHER1"
api_secret = "env:SURETY_IT_NEVER_SET_SECRET"
base_url = "{ga4_url}"
"#,
        meta_and_ads = meta_and_ads(dir, &meta, &ads, ""),
        ga4_url = ga4.base_url,
        li_token = secret(dir, "li-token", "li-test-token"),
        li_url = linkedin.base_url,
    );
    crate::support::init_env();
    let text = crate::support::config_toml(&dir.join("surety.db"), &ga4.base_url, &extra);
    let path = dir.join("surety.toml");
    std::fs::write(&path, text).unwrap();
    (path.display().to_string(), meta, ads, linkedin, ga4)
}

#[tokio::test]
async fn destinations_test_says_per_destination_what_works_and_what_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (config, meta, ads, linkedin, ga4) = four(dir.path()).await;
    let arg = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();

    let out = surety(arg(&["destinations", "test", "--config", &config, "--json"])).await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let tested: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let by = |name: &str| tested.iter().find(|t| t["destination"] == name).unwrap().clone();
    let ga = by("ga4-web");
    assert_eq!((ga["type"].clone(), ga["ok"].clone()), (json!("ga4"), json!(true)), "{ga}");
    assert!(ga["checks"].to_string().contains("does not check the api_secret"), "{ga}");
    let m = by("meta");
    assert_eq!(m["ok"], json!(false), "{m}");
    let pixel = m["checks"].as_array().unwrap().iter().find(|c| c["check"] == "pixel").unwrap();
    assert_eq!(pixel["ok"], json!(false));
    assert!(pixel["detail"].as_str().unwrap().contains("does not exist"), "{pixel}");
    let g = by("google-ads");
    assert_eq!(g["ok"], json!(true), "{g}");
    assert!(g["checks"].to_string().contains("conversion action 111"), "{g}");
    // A secret that cannot be read fails that destination only.
    let unset = by("ga4-unset");
    assert_eq!(unset["ok"], json!(false));
    assert_eq!(unset["checks"][0]["check"], "secrets and settings");
    assert!(unset["checks"][0]["detail"].as_str().unwrap().contains("SURETY_IT_NEVER_SET_SECRET"), "{unset}");
    let l = by("linkedin");
    assert_eq!(l["ok"], json!(false), "{l}");
    assert!(l["checks"].to_string().contains("no such conversion rule (HTTP 404)"), "{l}");
    for t in &tested {
        for c in t["checks"].as_array().unwrap() {
            assert!(c["check"].is_string() && c["ok"].is_boolean() && c["detail"].is_string(), "{c}");
        }
    }
    // Nothing was counted anywhere.
    assert_eq!((ga4.event_count(), meta.event_count(), ads.event_count(), linkedin.conversion_count()), (0, 0, 0, 0));

    // One destination, in words: each check on its own line.
    let out = surety(arg(&["destinations", "test", "ga4-web", "--config", &config])).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("ga4-web (ga4): ok\n"), "{text}");
    assert!(text.contains("  ok    validation server: "), "{text}");
    assert!(text.contains("1 of 1 destination(s) passed every check"), "{text}");
    let out = surety(arg(&["destinations", "test", "meta", "--config", &config])).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("  FAIL  pixel: "),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A refused token says so; a name that is not configured is a usage error.
    meta.expire_token();
    let out = surety(arg(&["destinations", "test", "meta", "--config", &config, "--json"])).await;
    let tested: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(tested[0]["checks"].to_string().contains("refused"), "{}", tested[0]);
    let out = surety(arg(&["destinations", "test", "nope", "--config", &config])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no destination named 'nope'"));
}

/// `reason` narrows a replay: with it, releasing what validate mode held back names only those
/// deliveries, and a delivery skipped for another reason (consent) is neither replayed nor listed
/// as refused.
#[tokio::test]
async fn a_replay_narrowed_by_reason_releases_only_what_the_roll_out_held_back() {
    let dir = tempfile::tempdir().unwrap();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let s = TestServer::start_custom(dir, ga4, "mode = \"validate\"", "").await;
    assert_eq!(s.post("/v1/events", &purchase("r1", 1)).await.status(), 202);
    let mut denied = purchase("r2", 1);
    denied["consent"]["analytics"] = json!("denied");
    assert_eq!(s.post("/v1/events", &denied).await.status(), 202);
    assert_eq!(s.settled("order:r1:order_paid").await, ["ga4-web:skipped:validate_only"]);
    assert_eq!(s.settled("order:r2:order_paid").await, ["ga4-web:skipped:consent_denied"]);
    let held = deliveries(&s, "order:r1:order_paid").await[0]["id"].as_i64().unwrap();
    let denied_id = deliveries(&s, "order:r2:order_paid").await[0]["id"].as_i64().unwrap();

    let all = s.post_admin("/v1/deliveries/replay", &json!({"state": "skipped", "dry_run": true})).await;
    let all: Value = all.json().await.unwrap();
    assert_eq!(all["replayed"], json!([held]), "{all}");
    assert_eq!(all["refused"][0]["delivery_id"], denied_id, "without a reason the consent skip is listed: {all}");

    let narrowed = json!({"state": "skipped", "reason": "validate_only", "dry_run": true});
    let r: Value = s.post_admin("/v1/deliveries/replay", &narrowed).await.json().await.unwrap();
    assert_eq!((r["replayed"].clone(), r["refused"].clone()), (json!([held]), json!([])), "{r}");
    let only_reason: Value = s
        .post_admin("/v1/deliveries/replay", &json!({"reason": "consent_denied", "dry_run": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only_reason["replayed"], json!([]), "a consent skip is never released: {only_reason}");
    assert_eq!(only_reason["refused"][0]["delivery_id"], denied_id, "{only_reason}");
}
