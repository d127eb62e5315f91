//! The reconcile reports kept in the ledger: the latest survives a restart (the dashboard's
//! reconcile page shows it and the `reconcile_unexplained` alert fires from it), and
//! `surety reconcile --record` keeps one while a plain `surety reconcile` writes nothing.

use std::path::Path;
use std::process::Command;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{json, Value};
use surety::store::Store;

use crate::support::{config_toml, eventually, postgres_ledger, TestServer};

const ALERT: &str = "[alerting]\ninterval_secs = 1\n\n\
     [[alerts]]\nname = \"reconcile-gaps\"\nwhen = \"reconcile_unexplained\"\nabove = 0\n";
/// The order the shop's export names and Surety never received: one unexplained `not_received`.
const NEVER_CAME: &str = "order:never-came:order_paid";

fn source() -> String {
    let t = (Utc::now() - Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    format!("subject.type,subject.id,kind,occurred_at,value,currency\norder,never-came,order_paid,{t},10,EUR\n")
}

/// The dashboard's spelling of a time.
fn shown(t: &Value) -> String {
    let t: DateTime<Utc> = t.as_str().unwrap().parse().unwrap();
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

async fn start(postgres: Option<&str>, dir: tempfile::TempDir, ga4: surety::platforms::ga4::sim::Ga4Sim) -> TestServer {
    match postgres {
        Some(url) => TestServer::start_postgres(ga4, url, ALERT, |t| t).await,
        None => TestServer::start_sqlite_in(dir, ga4, ALERT).await,
    }
}

async fn alert_active(s: &TestServer) -> bool {
    let v: Value = s.get_admin("/v1/alerts").await.json().await.unwrap();
    v["active"].as_array().unwrap().iter().any(|a| a["rule"] == "reconcile-gaps" && a["destination"] == "ga4-web")
}

async fn the_last_report_survives_a_restart(postgres: bool) {
    let url = if postgres { Some(postgres_ledger().await) } else { None };
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let s = start(url.as_deref(), tempfile::tempdir().unwrap(), ga4).await;
    let r = s.post_admin("/v1/reconcile", &json!({"source": {"format": "csv", "content": source()}})).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["mismatches"][0]["event_id"], NEVER_CAME, "{report:#}");
    let (dir, ga4) = s.stop().await;

    // A new process on the same ledger: the report is there, not in a memory that is gone.
    let s = start(url.as_deref(), dir, ga4).await;
    let page = s.get_admin("/?view=reconcile").await.text().await.unwrap();
    let window = format!("window {} .. {}", shown(&report["window"]["since"]), shown(&report["window"]["until"]));
    assert!(page.contains(&window), "{window}: {page}");
    assert!(page.contains("by admin token #1"), "{page}");
    assert!(page.contains("href=\"/?event=order%3Anever-came%3Aorder_paid\""), "{page}");
    assert!(page.contains("1 unexplained"), "{page}");
    eventually("the reconcile rule fires from the kept report", || alert_active(&s)).await;
}

#[tokio::test]
async fn the_last_reconcile_report_survives_a_restart_on_sqlite() {
    the_last_report_survives_a_restart(false).await;
}

#[tokio::test]
async fn the_last_reconcile_report_survives_a_restart_on_postgres() {
    the_last_report_survives_a_restart(true).await;
}

/// Two processes on one PostgreSQL ledger: the report one answered is the one the other shows.
#[tokio::test]
async fn every_process_on_a_postgres_ledger_shows_the_same_report() {
    let url = postgres_ledger().await;
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let a = TestServer::start_postgres(ga4.clone(), &url, "", |t| t).await;
    let b = TestServer::start_postgres(ga4, &url, "", |t| t).await;
    let r = a.post_admin("/v1/reconcile", &json!({"source": {"format": "csv", "content": source()}})).await;
    assert_eq!(r.status(), 200);
    let page = b.get_admin("/?view=reconcile").await.text().await.unwrap();
    assert!(page.contains("href=\"/?event=order%3Anever-came%3Aorder_paid\""), "{page}");
    assert!(page.contains("by admin token #1"), "{page}");
}

/// `surety reconcile --json [extra]` run as `USER=nightly`: the exit code and the report.
fn reconcile(config: &Path, source: &Path, extra: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_surety"))
        .args(["reconcile", "--json", "--source"])
        .arg(source)
        .args(extra)
        .arg("--config")
        .arg(config)
        .env("USER", "nightly")
        .output()
        .expect("run surety reconcile");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), serde_json::from_slice(&out.stdout).unwrap_or(Value::Null))
}

/// The ledger file's bytes with every commit in it: a write left in the write-ahead log (by a
/// process that ended without closing the ledger) is folded in first.
fn settled_bytes(db: &Path) -> Vec<u8> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    drop(conn);
    std::fs::read(db).unwrap()
}

#[tokio::test]
async fn reconcile_record_keeps_the_report_and_without_it_the_ledger_is_unchanged() {
    crate::support::init_env();
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("surety.db");
    let (config, source_file) = (dir.path().join("surety.toml"), dir.path().join("shop.csv"));
    std::fs::write(&config, config_toml(&db, &ga4.base_url, "")).unwrap();
    std::fs::write(&source_file, source()).unwrap();
    // A ledger made by a process that has ended: nothing of it is still open.
    let made = Command::new(env!("CARGO_BIN_EXE_surety")).arg("migrate").arg("--config").arg(&config).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));

    // Without --record: the report is printed, the ledger file is not touched.
    let before = settled_bytes(&db);
    let (code, report) = reconcile(&config, &source_file, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(report["totals"]["unexplained"], 1, "{report:#}");
    assert!(settled_bytes(&db) == before, "a plain reconcile wrote to the ledger");
    let store = surety::store::sqlite::SqliteStore::open(&db, surety::store::sqlite::Synchronous::Normal).unwrap();
    assert!(store.reconciles(1).await.unwrap().is_empty(), "no report kept without --record");
    drop(store);

    // With --record: the same answer, and the report kept as the OS user's.
    let (code, report) = reconcile(&config, &source_file, &["--record"]);
    assert_eq!(code, Some(1), "{report:#}");
    let store = surety::store::sqlite::SqliteStore::open(&db, surety::store::sqlite::Synchronous::Normal).unwrap();
    let kept = store.reconciles(10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].record.recorded_by, "cli:nightly");
    assert_eq!(kept[0].record.unexplained, 1);
    drop(store);

    // The dashboard shows it.
    let s = TestServer::start_sqlite_in(dir, ga4, "").await;
    let page = s.get_admin("/?view=reconcile").await.text().await.unwrap();
    assert!(page.contains("by cli:nightly"), "{page}");
    let window = format!("window {} .. {}", shown(&report["window"]["since"]), shown(&report["window"]["until"]));
    assert!(page.contains(&window), "{window}: {page}");
    assert!(page.contains("href=\"/?event=order%3Anever-came%3Aorder_paid\""), "{page}");
}
