//! The Prometheus alerting rules and the Grafana dashboard in deploy/: the rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`), and every Surety metric
//! the rules and the dashboard name is one a running Surety exports, so they cannot drift apart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::TestServer;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(path)
}

fn promtool() -> Option<()> {
    match Command::new("promtool").arg("--version").output() {
        Ok(o) if o.status.success() => Some(()),
        _ => {
            eprintln!("skipped: promtool is not installed (run scripts/install_promtool.sh; .ci/run does)");
            None
        }
    }
}

/// `surety_…` names in a text, with a histogram's or counter's suffix taken off.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("surety_") {
        let name: String =
            rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
        rest = &rest[at + name.len()..];
        // Skip what is not a metric name (a dashboard uid like `surety-overview` has no underscore).
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(name.clone(), |n, s| n.strip_suffix(s).map_or(n.clone(), str::to_owned));
        names.insert(base);
    }
    names
}

#[test]
fn the_rules_pass_promtool_and_their_unit_tests() {
    if promtool().is_none() {
        return;
    }
    let dir = deploy("prometheus");
    let check =
        Command::new("promtool").args(["check", "rules", "surety-alerts.yml"]).current_dir(&dir).output().unwrap();
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let test =
        Command::new("promtool").args(["test", "rules", "surety-alerts.test.yml"]).current_dir(&dir).output().unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

#[tokio::test]
async fn every_metric_the_rules_and_the_dashboard_use_is_exported() {
    let rules = std::fs::read_to_string(deploy("prometheus/surety-alerts.yml")).unwrap();
    let dashboard = std::fs::read_to_string(deploy("grafana/surety-dashboard.json")).unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("the dashboard is JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| !p.is_empty()), "the dashboard has panels");
    let used: BTreeSet<String> = metric_names(&rules).into_iter().chain(metric_names(&dashboard)).collect();
    assert!(used.len() >= 8, "{used:?}");

    // An idle server with one destination exports every gauge at 0; counters appear once counted,
    // so post one event and make one request first.
    let server = TestServer::start().await;
    let r = server.post("/v1/events", &crate::support::purchase("ALERT-1", 1)).await;
    assert_eq!(r.status(), 202);
    server.settled("order:ALERT-1:order_paid").await;
    let text = server
        .http
        .get(server.url("/metrics"))
        .bearer_auth(crate::support::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .fold(n.to_owned(), |n, s| n.strip_suffix(s).map_or(n.clone(), str::to_owned))
        })
        .collect();
    let missing: Vec<&String> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(missing.is_empty(), "used in deploy/ but not exported: {missing:?}\n{text}");
}
