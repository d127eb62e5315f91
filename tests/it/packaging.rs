//! The Dockerfile and the systemd unit in the repository parse and keep their promises: a
//! multi-stage build, a non-root user, the ledger on a volume, a health check, and a hardened unit.
//! `systemd-analyze verify` checks the unit where it is installed; `docker build --check` lints the
//! Dockerfile where a Docker daemon answers, and `SURETY_TEST_DOCKER_BUILD=1` builds the image.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// One Dockerfile instruction: its keyword (upper case) and its arguments, continuation lines joined.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if trimmed.starts_with('#') {
            continue; // a comment inside a continued instruction
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, args) = current.split_once(char::is_whitespace).unwrap_or((current.as_str(), ""));
        out.push((keyword.to_ascii_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    assert!(current.is_empty(), "the Dockerfile ends inside a continued instruction");
    out
}

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
    "MAINTAINER",
];

#[test]
fn dockerfile_builds_in_stages_and_runs_unprivileged_with_a_volume_and_a_health_check() {
    let text = std::fs::read_to_string(repo_file("Dockerfile")).expect("Dockerfile at the repository root");
    let instructions = dockerfile_instructions(&text);
    for (keyword, _) in &instructions {
        assert!(KEYWORDS.contains(&keyword.as_str()), "unknown Dockerfile instruction {keyword}");
    }
    let stages: Vec<usize> =
        instructions.iter().enumerate().filter(|(_, (k, _))| k == "FROM").map(|(i, _)| i).collect();
    assert!(stages.len() >= 2, "a multi-stage build: {} FROM line(s)", stages.len());
    assert_eq!(stages[0], 0, "the Dockerfile starts with FROM");
    let build_stage = instructions[0].1.to_ascii_lowercase();
    let build_name = build_stage.split(" as ").nth(1).expect("the build stage is named (FROM … AS build)").trim();
    let run_stage = &instructions[*stages.last().unwrap()..];
    let find = |keyword: &str| -> Vec<&str> {
        run_stage.iter().filter(|(k, _)| k == keyword).map(|(_, a)| a.as_str()).collect()
    };
    assert!(run_stage[0].1.contains("slim"), "the run stage is a slim image: {}", run_stage[0].1);
    assert!(
        find("COPY").iter().any(|a| a.contains(&format!("--from={build_name}"))),
        "the run stage copies the binary from the build stage"
    );
    let user = find("USER");
    let user = user.last().expect("the run stage sets USER");
    let name = user.split(':').next().unwrap();
    assert!(!["root", "0"].contains(&name), "the run stage runs as root: USER {user}");
    let volumes = find("VOLUME");
    assert!(volumes.iter().any(|v| v.contains("/var/lib/surety")), "the ledger's folder is a VOLUME: {volumes:?}");
    let env = find("ENV").join(" ");
    assert!(env.contains("sqlite:///var/lib/surety/"), "the ledger is on the volume: {env}");
    let expose = find("EXPOSE").join(" ");
    let listen_port = env.split("SURETY_SERVER__LISTEN=").nth(1).and_then(|l| l.split_whitespace().next());
    let port = listen_port.and_then(|l| l.rsplit(':').next()).expect("the image sets the listen address");
    assert!(expose.split_whitespace().any(|p| p.trim_end_matches("/tcp") == port), "EXPOSE {expose} vs {port}");
    let health = find("HEALTHCHECK");
    let health = health.last().expect("a HEALTHCHECK");
    assert!(
        health.contains("CMD") && health.contains("/readyz") && health.contains(port),
        "the health check asks /readyz on port {port}: {health}"
    );
    assert!(find("ENTRYPOINT").iter().any(|e| e.contains("surety")), "the entry point is surety");

    docker_checks();
}

/// Lints the Dockerfile with the Docker daemon where one answers; builds it when asked.
fn docker_checks() {
    let daemon = Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    if !daemon {
        eprintln!("skipped: docker build --check (no Docker daemon answers here)");
        return;
    }
    let dir = env!("CARGO_MANIFEST_DIR");
    let check = Command::new("docker").args(["build", "--check", dir]).output().expect("run docker build --check");
    assert!(check.status.success(), "docker build --check:\n{}", String::from_utf8_lossy(&check.stderr));
    if std::env::var("SURETY_TEST_DOCKER_BUILD").as_deref() == Ok("1") {
        let build = Command::new("docker").args(["build", "-t", "surety:test", dir]).status().expect("docker build");
        assert!(build.success(), "docker build failed");
    } else {
        eprintln!("skipped: building the image (set SURETY_TEST_DOCKER_BUILD=1; it compiles a release build)");
    }
}

/// The unit's `[Section]` → `Key=Value` lines (keys may repeat).
fn unit_entries(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line.split_once('=').unwrap_or_else(|| panic!("not Key=Value: {line}"));
        assert!(!section.is_empty(), "{key} outside a section");
        out.push((section.clone(), key.trim().to_owned(), value.trim().to_owned()));
    }
    out
}

#[test]
fn systemd_unit_parses_and_is_hardened() {
    let path = repo_file("packaging/surety.service");
    let text = std::fs::read_to_string(&path).expect("packaging/surety.service");
    let entries = unit_entries(&text);
    let value = |key: &str| -> Vec<&str> {
        entries.iter().filter(|(s, k, _)| s == "Service" && k == key).map(|(_, _, v)| v.as_str()).collect()
    };
    let exec = value("ExecStart");
    assert!(exec.len() == 1 && exec[0].contains("surety serve"), "ExecStart runs surety serve: {exec:?}");
    for (key, expected) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "surety"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(value(key), [expected], "{key}");
    }
    assert_eq!(value("RestrictAddressFamilies"), ["AF_INET AF_INET6 AF_UNIX"]);
    assert!(value("SystemCallFilter").contains(&"@system-service"), "SystemCallFilter=@system-service");
    assert!(
        value("Environment").iter().any(|e| e.contains("sqlite:///var/lib/surety/")),
        "the ledger lives in the StateDirectory"
    );
    assert!(entries.iter().any(|(s, k, v)| s == "Install" && k == "WantedBy" && v == "multi-user.target"));

    let Ok(found) = Command::new("sh").args(["-c", "command -v systemd-analyze"]).output() else {
        eprintln!("skipped: systemd-analyze verify (no sh)");
        return;
    };
    if !found.status.success() {
        eprintln!("skipped: systemd-analyze verify (install Debian's systemd package to run it)");
        return;
    }
    // `verify` requires ExecStart's binary to exist: point it at the one cargo built.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("surety.service");
    std::fs::write(&unit, text.replace("/usr/local/bin/surety", env!("CARGO_BIN_EXE_surety"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("run systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // An unknown or misspelt key is only a warning to systemd; here it is a failure.
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
}
