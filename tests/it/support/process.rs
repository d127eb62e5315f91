//! The `surety` binary as a child process, for what only a real process shows: SIGKILL and
//! restarts.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{config_toml, init_env};

pub struct Process {
    child: Child,
    pub base: String,
}

/// Writes the test configuration (listening on a fixed free port) into `dir`.
pub fn write_config(dir: &Path, ga4_base: &str, extra: &str) -> (PathBuf, String) {
    init_env();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let text = config_toml(&dir.join("surety.db"), ga4_base, extra)
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{listen}\""));
    let path = dir.join("surety.toml");
    std::fs::write(&path, text).expect("write config");
    (path, format!("http://{listen}"))
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl Process {
    /// Starts `surety serve --config FILE` and waits until it answers `/readyz`.
    pub async fn start(config: &Path, base: &str) -> Self {
        Self::start_logging(config, base, Stdio::inherit()).await
    }

    /// As [`Process::start`], its log (stderr, `warn` and up) going to `log`.
    pub async fn start_logging(config: &Path, base: &str, log: impl Into<Stdio>) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_surety"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn surety");
        let p = Self { child, base: base.to_owned() };
        let http = reqwest::Client::new();
        for _ in 0..400 {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status().is_success() {
                    return p;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("surety did not become ready at {base}");
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("send SIGTERM");
        self.child.wait().expect("wait")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
