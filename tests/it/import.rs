//! `surety import FILE`, run as the real binary: counts, the reject file, events in the ledger
//! and sent by the server afterwards, reruns as duplicates, resuming after an interruption or an
//! appended file, and a clear non-zero exit when nothing usable was read.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{config_toml, init_env, on_ledger, open_ledger, suite_ledger, TestServer};

/// A temp folder with a test configuration whose ledger is `surety.db` in it, or a fresh
/// PostgreSQL database under `SURETY_IT_LEDGER=postgres` (its URL).
async fn setup(ga4_base: &str) -> (tempfile::TempDir, PathBuf, Option<String>) {
    init_env();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("surety.toml");
    let db = dir.path().join("surety.db");
    let pg = suite_ledger().await;
    std::fs::write(&config, on_ledger(config_toml(&db, ga4_base, ""), &db, pg.as_deref())).unwrap();
    (dir, config, pg)
}

/// The events in the test's ledger.
async fn events(dir: &tempfile::TempDir, pg: Option<&str>) -> u64 {
    open_ledger(&dir.path().join("surety.db"), pg).await.counts().await.unwrap().events
}

fn surety(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_surety")).args(args).arg("--config").arg(config).output().expect("run surety")
}

/// `surety import FILE --json …`: exit code, the summary, stderr.
fn import(file: &Path, config: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_surety"))
        .arg("import")
        .arg(file)
        .args(["--json", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .expect("run surety import");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let summary = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), summary, stderr)
}

fn ago(hours: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn csv_import_counts_rejects_rows_and_its_events_are_in_the_ledger_and_sent_by_serve() {
    let ga4 = surety::platforms::ga4::sim::start().await.unwrap();
    let (dir, config, pg) = setup(&ga4.base_url).await;
    let (h1, h2) = (ago(1), ago(2));
    let bad_email = format!("order,i3,{h1},5,EUR,not-an-email,555.3,granted,,");
    let csv = [
        "subject.type,subject.id,occurred_at,value,currency,Email,identity.client_id,consent.analytics,Notes,kind",
        &format!("order,i1,{h1},59.90,EUR,Jane.Doe@Example.com,555.1,granted,vip customer,"),
        &format!("order,i2,{h2},10,EUR,,555.2,granted,,"),
        &bad_email,
        "order,i4,yesterday,5,EUR,,555.4,granted,,",
        &format!("order,i5,{h1},5,EUR"),
        &format!("lead,l1,{h1},,,,,,,lead_scored"),
        &format!("order,i6,{},7,EUR,,555.6,granted,,", ago(100)),
    ]
    .join("\n");
    let file = dir.path().join("sales.csv");
    std::fs::write(&file, csv + "\n").unwrap();
    let args = ["--map", "Email=identity.email", "--map", "Notes=", "--kind", "order_paid"];

    let (code, s, stderr) = import(&file, &config, &args);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        (&s["rows"], &s["accepted"], &s["duplicate"], &s["conflict"], &s["rejected"], &s["not_routed"]),
        (&json!(7), &json!(4), &json!(0), &json!(0), &json!(3), &json!(1)),
        "{s:#}"
    );
    assert_eq!(s["deliveries"], json!({"ga4-web:pending": 2, "ga4-web:skipped:outside_window": 1}));

    let rejects = lines(&dir.path().join("sales.csv.rejects.ndjson"));
    let at: Vec<(u64, &str)> =
        rejects.iter().map(|r| (r["line"].as_u64().unwrap(), r["errors"][0]["field"].as_str().unwrap())).collect();
    assert_eq!(at, [(4, "identity.email"), (5, "occurred_at"), (6, "")]);
    assert_eq!(rejects[0]["raw"], bad_email.as_str());
    assert!(rejects[2]["errors"][0]["message"].as_str().unwrap().contains("has 5 fields"));

    let out = surety(&["events", "show", "order:i1:order_paid"], &config);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ga4-web as 'purchase'") && text.contains("[pending]"), "{text}");
    let out = surety(&["events", "show", "order:i1:order_paid", "--json"], &config);
    let view: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&view["event"]["source"], &view["event"]["value"]), (&json!("import"), &json!(59.9)));
    assert_eq!(view["event"]["identity"]["email"]["meta"].as_str().map(str::len), Some(64), "the email is hashed");
    assert!(!String::from_utf8_lossy(&out.stdout).to_lowercase().contains("jane.doe@example.com"));
    assert!(surety(&["events", "show", "lead:l1:lead_scored"], &config).status.success());
    assert_eq!(events(&dir, pg.as_deref()).await, 4);

    // The same file again: nothing new since the checkpoint; read again: only duplicates.
    let (code, s, stderr) = import(&file, &config, &args);
    assert_eq!((code, &s["rows"], &s["resumed_at_line"]), (Some(0), &json!(0), &json!(9)), "{stderr}");
    assert!(stderr.contains("nothing new"), "{stderr}");
    let (code, s, _) = import(&file, &config, &[&args[..], &["--restart"]].concat());
    assert_eq!(code, Some(0));
    assert_eq!((&s["accepted"], &s["duplicate"], &s["rejected"]), (&json!(0), &json!(4), &json!(3)), "{s:#}");
    assert_eq!(lines(&dir.path().join("sales.csv.rejects.ndjson")).len(), 3, "the reject file is rewritten");
    assert_eq!(events(&dir, pg.as_deref()).await, 4);

    // The ledger is the queue: the server sends what the import planned.
    let server = TestServer::start_on(dir, ga4, pg.clone()).await;
    assert_eq!(server.settled("order:i1:order_paid").await, ["ga4-web:delivered:sent"]);
    assert_eq!(server.settled("order:i2:order_paid").await, ["ga4-web:delivered:sent"]);
    assert_eq!(server.settled("order:i6:order_paid").await, ["ga4-web:skipped:outside_window"]);
}

fn ndjson_row(i: usize) -> String {
    json!({"kind": "order_paid", "occurred_at": ago(1), "subject": {"type": "order", "id": format!("n{i}")},
           "value": i, "currency": "EUR"})
    .to_string()
        + "\n"
}

#[tokio::test]
async fn an_appended_file_resumes_after_the_committed_rows_and_an_edited_one_is_refused() {
    let (dir, config, pg) = setup("http://127.0.0.1:9").await;
    let file = dir.path().join("transfers.ndjson");
    std::fs::write(&file, (1..=6).map(ndjson_row).collect::<String>()).unwrap();
    let (code, s, stderr) = import(&file, &config, &["--batch-size", "4"]);
    assert_eq!((code, &s["rows"], &s["accepted"]), (Some(0), &json!(6), &json!(6)), "{stderr}");

    // The rest of the file arrives, with one bad line.
    let rest = (7..=10).map(ndjson_row).collect::<String>() + "{\"kind\": \"order_paid\"\n";
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap() + &rest).unwrap();
    let (code, s, stderr) = import(&file, &config, &["--batch-size", "4"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(s["resumed_at_line"], 7);
    assert_eq!(
        (&s["rows"], &s["accepted"], &s["duplicate"], &s["rejected"]),
        (&json!(5), &json!(4), &json!(0), &json!(1)),
        "rows 1-6 are not read again: {s:#}"
    );
    assert_eq!((&s["totals"]["rows"], &s["totals"]["accepted"]), (&json!(11), &json!(10)));
    let rejects = lines(&dir.path().join("transfers.ndjson.rejects.ndjson"));
    assert_eq!((rejects.len(), &rejects[0]["line"]), (1, &json!(11)));
    assert_eq!(events(&dir, pg.as_deref()).await, 10);

    // An edit before the checkpoint is not silently skipped.
    let edited = std::fs::read_to_string(&file).unwrap().replacen("\"n1\"", "\"m1\"", 1);
    std::fs::write(&file, edited).unwrap();
    let (code, _, stderr) = import(&file, &config, &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("changed since the checkpoint") && stderr.contains("--restart"), "{stderr}");
    let (code, s, _) = import(&file, &config, &["--restart"]);
    assert_eq!(code, Some(0));
    assert_eq!((&s["accepted"], &s["duplicate"], &s["rejected"]), (&json!(1), &json!(9), &json!(1)), "{s:#}");
}

#[tokio::test]
async fn an_import_killed_mid_file_continues_from_its_checkpoint() {
    const ROWS: u64 = 20_000;
    const BATCH: u64 = 50;
    let (dir, config, pg) = setup("http://127.0.0.1:9").await;
    let file = dir.path().join("backfill.ndjson");
    std::fs::write(&file, (1..=ROWS as usize).map(ndjson_row).collect::<String>()).unwrap();
    let checkpoint = dir.path().join("backfill.ndjson.checkpoint");
    let mut child = Command::new(env!("CARGO_BIN_EXE_surety"))
        .arg("import")
        .arg(&file)
        .args(["--batch-size", &BATCH.to_string(), "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = false;
    for _ in 0..2000 {
        if checkpoint.exists() {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen, "no checkpoint was written");
    let cp: Value = serde_json::from_str(&std::fs::read_to_string(&checkpoint).unwrap()).unwrap();
    let committed = cp["totals"]["rows"].as_u64().unwrap();
    assert!(committed < ROWS, "the import finished before it could be killed; make the file larger");

    let (code, s, stderr) = import(&file, &config, &["--batch-size", &BATCH.to_string()]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(s["resumed_at_line"], cp["line"]);
    assert_eq!(s["rows"].as_u64().unwrap(), ROWS - committed, "only the rows after the checkpoint are read");
    // Batches committed after the last checkpoint come back as duplicates, nothing else.
    assert!(s["duplicate"].as_u64().unwrap() <= 2 * BATCH, "{s:#}");
    assert_eq!(s["totals"]["rows"].as_u64(), Some(ROWS));
    assert_eq!(events(&dir, pg.as_deref()).await, ROWS);
}

#[tokio::test]
async fn nothing_usable_exits_non_zero_with_a_message_and_writes_nothing() {
    let (dir, config, pg) = setup("http://127.0.0.1:9").await;
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let header = "kind,occurred_at,subject.type,subject.id\n";

    let (code, _, stderr) = import(&write("empty.csv", header), &config, &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("empty.csv has no rows"), "{stderr}");

    let all_bad = write("bad.csv", &format!("{header}order_paid,soon,order,1\nOrder Paid,{},order,2\n", ago(1)));
    let (code, s, stderr) = import(&all_bad, &config, &[]);
    assert_eq!((code, &s["rejected"]), (Some(1), &json!(2)));
    assert!(stderr.contains("no usable row") && stderr.contains("bad.csv.rejects.ndjson"), "{stderr}");
    assert_eq!(lines(&dir.path().join("bad.csv.rejects.ndjson")).len(), 2);
    assert!(!dir.path().join("bad.csv.checkpoint").exists(), "nothing to resume");

    let (code, _, stderr) =
        import(&write("crm.csv", "kind,occurred_at,subject.type,subject.id,colour\n"), &config, &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("column 'colour' is not a canonical field"), "{stderr}");

    let (code, _, stderr) = import(&dir.path().join("missing.csv"), &config, &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot open") && stderr.contains("missing.csv"), "{stderr}");

    let (code, _, stderr) = import(&write("events.txt", "{}\n"), &config, &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--format"), "{stderr}");

    assert_eq!(events(&dir, pg.as_deref()).await, 0);
}

/// The importer plans from configuration alone: a destination whose secret is not set where the
/// import runs (it sends nothing) neither stops it nor changes what it plans.
#[tokio::test]
async fn import_plans_without_resolving_destination_secrets() {
    let (dir, config, _) = setup("http://127.0.0.1:9").await;
    let file = dir.path().join("orders.ndjson");
    let row = json!({"kind": "order_paid", "occurred_at": ago(1), "subject": {"type": "order", "id": "s1"},
        "value": 12.5, "currency": "EUR", "identity": {"client_id": "555.1"}, "consent": {"analytics": "granted"}});
    std::fs::write(&file, format!("{row}\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_surety"))
        .arg("import")
        .arg(&file)
        .args(["--json", "--config"])
        .arg(&config)
        .env_remove(crate::support::GA4_SECRET_ENV)
        .output()
        .expect("run surety import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["accepted"], json!(1), "{s:#}");
    assert_eq!(s["deliveries"], json!({"ga4-web:pending": 1}), "planned as serve would");
}

/// `surety validate FILE`: what the import would do, writing nothing — the ledger is not even
/// created; exit 0 when every row is valid, 1 with each bad row's line when one is not.
#[test]
fn validate_reports_what_the_import_would_do_and_writes_nothing() {
    // On the SQLite file whatever the suite's ledger: that no ledger file appears is the point.
    init_env();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("surety.toml");
    std::fs::write(&config, config_toml(&dir.path().join("surety.db"), "http://127.0.0.1:9", "")).unwrap();
    let good = dir.path().join("good.ndjson");
    std::fs::write(&good, ndjson_row(1) + &ndjson_row(2)).unwrap();
    let out = surety(&["validate", good.to_str().unwrap(), "--json"], &config);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["rows"].as_u64(), report["valid"].as_u64(), report["invalid"].as_u64()),
        (Some(2), Some(2), Some(0))
    );
    // These rows state no consent: the report says GA4 would skip both, before anything is written.
    assert_eq!(report["destinations"]["ga4-web"]["ended"]["skipped:consent_denied"], 2, "{report:#}");

    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, ndjson_row(3) + "{\"kind\": \"order_paid\"}\n").unwrap();
    let out = surety(&["validate", bad.to_str().unwrap()], &config);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("invalid    1") && text.contains("line 2: "), "{text}");
    assert!(!dir.path().join("surety.db").exists(), "validate created no ledger");
    assert!(
        !dir.path().join("bad.ndjson.checkpoint").exists() && !dir.path().join("bad.ndjson.rejects.ndjson").exists()
    );
}
