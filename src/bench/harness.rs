//! What every scenario needs: a real Surety on a loopback port with its ledger in a temp folder,
//! platform simulators that note when each event arrived (and whether twice), latency
//! histograms, and a reader for the few `/metrics` lines the benchmark checks.

mod sim;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::sim::Sim;
use crate::config::Config;

/// A Surety serving on 127.0.0.1 with its ledger in a temp folder, stopped by [`Server::stop`].
pub struct Server {
    pub base_url: String,
    /// The TOML the server was started with, as the report prints it.
    pub toml: String,
    config: Config,
    /// Seconds it took to fill the ledger with its history (`--history`), if it has one.
    pub filled: Option<f64>,
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    /// The server's own runtime, if it has one (see [`ServerSpec::own_runtime`]).
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

/// What a scenario's server looks like.
pub struct ServerSpec<'a> {
    /// `full` (durable, the default) or `normal`.
    pub synchronous: &'a str,
    /// `[worker]` and destination settings, or none for an ingest-only server.
    pub delivery: Option<DeliverySpec>,
    /// Serve from a runtime of its own (as a separate process would) rather than the client's:
    /// on one runtime a client task and the server task it wakes tend to share a worker thread
    /// (tokio's LIFO slot is not stolen), which leaves cores idle.
    pub own_runtime: bool,
    /// Measure PostgreSQL: a server URL in which a fresh database is created for this server.
    pub postgres: Option<&'a str>,
    /// Ended events to fill the fresh ledger with before the server starts (`--history`).
    pub history: u64,
}

pub struct DeliverySpec {
    pub claim_batch: usize,
    /// The `[[destinations]]` and their catalog routes (TOML, [`Sim::destination_toml`]).
    pub destinations: String,
}

impl Server {
    /// Writes the configuration, starts `surety::run` on a free port and waits until it is ready.
    pub async fn start(spec: &ServerSpec<'_>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("surety-bench-").tempdir().context("cannot create a temp folder")?;
        let db = dir.path().join("ledger.db");
        let url = match spec.postgres {
            Some(server) => crate::store::postgres::create_database(server, "surety_bench")
                .await
                .with_context(|| format!("cannot create a bench database on {server}"))?,
            None => format!("sqlite://{}", db.display()),
        };
        let mut toml = format!(
            "[storage]\nurl = {}\nsqlite_synchronous = {}\n\n[log]\nlevel = \"warn\"\n",
            quote(&url),
            quote(spec.synchronous),
        );
        if let Some(d) = &spec.delivery {
            // Secrets live in files of a temp folder: no inline secret, and no process-wide
            // environment variable to set while other threads may read the environment.
            toml.push_str(&format!("\n[worker]\nclaim_batch = {}\npoll_interval_ms = 200\n", d.claim_batch));
            toml.push_str(&d.destinations);
        }
        let config = Config::from_toml(&toml)?;
        let filled = match spec.history {
            0 => None,
            n => Some(super::history::fill(&config, n).await.context("cannot fill the ledger's history")?),
        };
        let serving = config.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let serve = {
            let shutdown = stop.clone().cancelled_owned();
            async move { crate::run(config, TcpListener::from_std(listener)?, shutdown).await }
        };
        let (task, runtime) = if spec.own_runtime {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("surety-server")
                .build()
                .context("cannot start the server's runtime")?;
            (rt.spawn(serve), Some(rt))
        } else {
            (tokio::spawn(serve), None)
        };
        let server = Self { base_url, toml, config: serving, filled, stop, task, runtime, _dir: dir };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = client(1)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.task.is_finished() {
                bail!("the server stopped while starting");
            }
            if let Ok(r) = client.get(format!("{}/readyz", self.base_url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("the server was not ready within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's ledger, opened beside it as the admin commands open it (ADR 0003), to read
    /// totals the API does not give.
    pub async fn ledger(&self) -> anyhow::Result<Arc<dyn crate::store::Store>> {
        crate::store::open(&self.config).await
    }

    /// Stops the server and waits (bounded) for it to finish; the temp folder goes with it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let result = match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(joined) => joined.context("the server task failed").and_then(|r| r),
            Err(_) => Err(anyhow::anyhow!("the server did not stop within 30 s")),
        };
        if let Some(rt) = self.runtime {
            // A runtime may not be dropped from async code; its tasks have ended by now.
            rt.shutdown_background();
        }
        result
    }
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A loopback client with room for `connections` kept-alive connections.
pub fn client(connections: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")
}

/// A latency histogram in microseconds (1 µs to 10 min, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    // Valid bounds and precision: construction cannot fail.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_micros() as u64).max(1));
}

/// p50/p90/p99/max of a histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// Says how large a history the scenario's ledger holds and how long filling it took.
pub fn history_note(report: &crate::bench::Report, events: u64, filled: Option<f64>) {
    if let Some(secs) = filled {
        report.line(format!(
            "    history: the ledger holds {} ended events, filled in {secs:.2} s ({} events/s)",
            grouped(events as f64),
            grouped(events as f64 / secs.max(1e-9))
        ));
    }
}

/// Sums the samples of `metric` whose labels include every one of `labels` (`key="value"`).
pub fn metric_sum(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name_labels, value) = l.rsplit_once(' ')?;
            let (name, rest) = name_labels.split_once('{').unwrap_or((name_labels, ""));
            (name == metric && labels.iter().all(|want| rest.contains(want))).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

/// Thousands separators for counts and rates.
pub fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `a, b, c and d`.
pub fn human_list(items: &[&str]) -> String {
    match items.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_matching_samples() {
        let text = "# HELP x\nsurety_deliveries_total{destination=\"g\",state=\"delivered\",reason=\"sent\"} 7\n\
                    surety_deliveries_total{destination=\"g\",state=\"rejected\",reason=\"invalid\"} 2\n\
                    surety_queue_depth{destination=\"g\"} 3\n";
        assert_eq!(metric_sum(text, "surety_deliveries_total", &["state=\"delivered\""]), 7.0);
        assert_eq!(metric_sum(text, "surety_deliveries_total", &[]), 9.0);
        assert_eq!(metric_sum(text, "surety_queue_depth", &["destination=\"g\""]), 3.0);
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1234567.4), "1,234,567");
    }
}
