//! What an operator meets first on the command line: `check-config` explaining every problem at
//! once, admin commands that refuse to invent an empty ledger, and logs without colour codes
//! when they do not go to a terminal.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn surety(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_surety")).args(args).env_remove("RUST_LOG").output().expect("run surety")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn check_config_explains_every_problem_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "surety.toml",
        r#"
[server]
listn = "127.0.0.1:8080"

[auth]
admin_tokens = ["an-inline-admin-token"]

[log]
format = "jsonl"

[retry]
max_attempts = "four"

[[destinations]]
name = "meta"
type = "meta"
pixel_id = "1234567890"
access_token = "env:SURETY_IT_CHECK_CONFIG_UNSET"
consent = { purpose = "ad_userdata" }
"#,
    );
    let out = surety(&["check-config", "--config", &config]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for needle in [
        "server.listn: unknown key; did you mean 'listen'?",
        "auth.admin_tokens[0]: secrets are never written inline",
        "retry.max_attempts: expected a whole number, 0 or more, found the text \"four\"",
        "destinations.meta.consent.purpose: \"ad_userdata\" is not one of \"analytics\", \"ad_user_data\"; did you mean 'ad_user_data'?",
        "log.format: must be \"text\" or \"json\"",
        "destinations.meta.access_token (env:SURETY_IT_CHECK_CONFIG_UNSET): environment variable SURETY_IT_CHECK_CONFIG_UNSET is not set",
    ] {
        assert!(stderr.contains(needle), "check-config does not say {needle:?}:\n{stderr}");
    }
    assert!(!stderr.contains("an-inline-admin-token"), "the inline secret is repeated:\n{stderr}");
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn check_config_refuses_a_one_character_secret() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write(dir.path(), "token", "x\n");
    let config = write(dir.path(), "surety.toml", &format!("[auth]\nadmin_tokens = [\"file:{secret}\"]\n"));
    let out = surety(&["check-config", "--config", &config]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("file:{secret}")) && stderr.contains("at least 8 characters"), "{stderr}");
}

#[test]
fn admin_commands_refuse_to_create_a_ledger_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("nowhere").join("surety.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let config = write(dir.path(), "surety.toml", &format!("[storage]\nurl = \"sqlite://{}\"\n", db.display()));
    for args in [
        &["events", "show", "order:1042:order_paid"][..],
        &["dlq", "list"],
        &["dlq", "replay"],
        &["dlq", "settle", "--id", "1", "--as", "delivered"],
        &["prune", "--older-than-days", "400"],
    ] {
        let mut args = args.to_vec();
        args.extend(["--config", &config]);
        let out = surety(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("no ledger at {}", db.display())), "{args:?} names the file: {stderr}");
        assert!(!db.exists(), "{args:?} created an empty ledger");
    }
    // `migrate` is how a ledger is made without serving; then the same commands work.
    assert!(surety(&["migrate", "--config", &config]).status.success());
    let out = surety(&["dlq", "list", "--config", &config]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "surety.toml",
        &format!(
            "[storage]\nurl = \"sqlite://{}/surety.db\"\n[server]\nlisten = \"127.0.0.1:0\"\n",
            dir.path().display()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_surety"))
        .args(["serve", "--config", &config])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn surety serve");
    let stderr = child.stderr.take().unwrap();
    // A reader thread, so the wait below is bounded even if no line ever comes.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains("NO AUTH TOKENS CONFIGURED") {
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen.contains("NO AUTH TOKENS CONFIGURED"), "serve logged its warning:\n{seen}");
    assert!(seen.contains("WARN"), "the level is still written, in plain text:\n{seen}");
    assert!(!seen.contains('\u{1b}'), "colour codes in piped logs:\n{seen:?}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_not_in_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        write(dir.path(), "surety.toml", &format!("[storage]\nurl = \"sqlite://{}/l.db\"\n", dir.path().display()));
    assert!(surety(&["migrate", "--config", &config]).status.success());
    // The reading end is closed before the command writes: as `surety dlq list | head -0`.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_surety"))
        .args(["dlq", "list", "--config", &config])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run surety");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

#[test]
fn check_config_never_prints_the_ledger_password() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        write(dir.path(), "surety.toml", "[storage]\nurl = \"postgres://surety:pg-s3cret@db.internal:5432/surety\"\n");
    let out = surety(&["check-config", "--config", &config]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("db.internal:5432/surety") && !stdout.contains("pg-s3cret"), "{stdout}");
}
