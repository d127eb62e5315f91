//! What every scenario needs: a real Surety on a loopback port with its ledger in a temp folder,
//! platform simulators that note when each event arrived (and whether twice), latency
//! histograms, and a reader for the few `/metrics` lines the benchmark checks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::platforms::ga4::sim::{self as ga4, Ga4SimState};

/// Name of the GA4 destination the delivery scenario configures.
pub const GA4_DESTINATION: &str = "ga4-bench";

/// A Surety serving on 127.0.0.1 with its ledger in a temp folder, stopped by [`Server::stop`].
pub struct Server {
    pub base_url: String,
    /// The TOML the server was started with, as the report prints it.
    pub toml: String,
    config: Config,
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
    pub delivery: Option<DeliverySpec<'a>>,
    /// Serve from a runtime of its own (as a separate process would) rather than the client's:
    /// on one runtime a client task and the server task it wakes tend to share a worker thread
    /// (tokio's LIFO slot is not stolen), which leaves cores idle.
    pub own_runtime: bool,
    /// Measure PostgreSQL: a server URL in which a fresh database is created for this server.
    pub postgres: Option<&'a str>,
}

pub struct DeliverySpec<'a> {
    pub ga4_base_url: &'a str,
    pub claim_batch: usize,
    pub concurrency: usize,
    /// More `[[destinations]]` and their catalog routes (TOML), appended after GA4's.
    pub more: Option<String>,
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
            // The secret lives in a file of the temp folder: no inline secret, and no process-wide
            // environment variable to set while other threads may read the environment.
            let secret = dir.path().join("ga4_api_secret");
            std::fs::write(&secret, "bench-secret\n").context("cannot write the GA4 secret file")?;
            toml.push_str(&format!(
                "\n[worker]\nclaim_batch = {claim}\npoll_interval_ms = 200\n\n\
                 [[destinations]]\nname = \"{GA4_DESTINATION}\"\ntype = \"ga4\"\nmeasurement_id = \"G-BENCH01\"\n\
                 api_secret = {secret}\nbase_url = {base}\nconcurrency = {conc}\n\n\
                 [catalog.order_paid]\n{GA4_DESTINATION} = {{ event = \"purchase\" }}\n",
                claim = d.claim_batch,
                secret = quote(&format!("file:{}", secret.display())),
                base = quote(d.ga4_base_url),
                conc = d.concurrency,
            ));
            if let Some(more) = &d.more {
                toml.push_str(more);
            }
        }
        let config = Config::from_toml(&toml)?;
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
        let server = Self { base_url, toml, config: serving, stop, task, runtime, _dir: dir };
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

/// A platform simulator behind a layer that notes when each event (by the benchmark's event
/// number, which every payload carries) reached it and was taken, so ingest→platform latency is
/// known per event, and an event taken twice shows.
pub struct Sim<S = Ga4SimState> {
    pub base_url: String,
    pub state: S,
    pub arrivals: Arc<Arrivals>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Where a platform's requests name the events they carry.
#[derive(Clone, Copy, Debug)]
pub struct Marker {
    /// How the path of a request carrying events ends (`/debug/…` paths excepted).
    pub path: &'static str,
    /// What precedes an event's number in such a request's body.
    pub key: &'static str,
}

impl Marker {
    fn matches(&self, path: &str) -> bool {
        path.ends_with(self.path) && !path.starts_with("/debug/")
    }
}

/// GA4: `params.transaction_id` is the order number.
pub const GA4_MARKER: Marker = Marker { path: "/mp/collect", key: "\"transaction_id\":\"" };

/// Arrival time of each event, in microseconds since `epoch` (0 = not arrived), and how many
/// arrived more than once. Only requests the simulator answered 2xx count.
pub struct Arrivals {
    epoch: Instant,
    at: Vec<AtomicU64>,
    pub repeats: AtomicU64,
    pub unknown: AtomicU64,
    marker: Marker,
}

impl Arrivals {
    pub fn new(events: usize, epoch: Instant, marker: Marker) -> Self {
        Self {
            epoch,
            at: (0..events).map(|_| AtomicU64::new(0)).collect(),
            repeats: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            marker,
        }
    }

    fn note(&self, body: &[u8], now_us: u64) {
        let key = self.marker.key.as_bytes();
        let mut rest = body;
        while let Some(pos) = find(rest, key) {
            rest = &rest[pos + key.len()..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let n = std::str::from_utf8(&rest[..digits]).ok().and_then(|s| s.parse::<usize>().ok());
            match n.and_then(|n| self.at.get(n)) {
                Some(slot) => {
                    if slot.swap(now_us.max(1), Ordering::Relaxed) != 0 {
                        self.repeats.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    self.unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub fn micros_since_epoch(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_micros() as u64
    }

    /// When event `n` arrived (µs since the epoch), if it did.
    pub fn get(&self, n: usize) -> Option<u64> {
        self.at.get(n).map(|a| a.load(Ordering::Relaxed)).filter(|&us| us != 0)
    }

    /// Events that arrived at least once.
    pub fn arrived(&self) -> usize {
        self.at.iter().filter(|a| a.load(Ordering::Relaxed) != 0).count()
    }

    /// When the last event arrived (µs since the epoch).
    pub fn last(&self) -> Option<u64> {
        self.at.iter().map(|a| a.load(Ordering::Relaxed)).max().filter(|&us| us != 0)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

async fn note_arrival(State(arrivals): State<Arc<Arrivals>>, request: Request, next: Next) -> Response {
    if !arrivals.marker.matches(request.uri().path()) {
        return next.run(request).await;
    }
    let arrived = arrivals.micros_since_epoch(Instant::now());
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, 64 << 20).await {
        Ok(bytes) => {
            let response = next.run(Request::from_parts(parts, Body::from(bytes.clone()))).await;
            if response.status().is_success() {
                arrivals.note(&bytes, arrived);
            }
            response
        }
        Err(_) => Response::builder().status(400).body(Body::from("unreadable body")).unwrap_or_default(),
    }
}

impl Sim<Ga4SimState> {
    /// Serves the GA4 simulator's routes on 127.0.0.1:0, counting only (no request bodies kept).
    pub async fn start(events: usize, epoch: Instant) -> anyhow::Result<Self> {
        let state = Ga4SimState::new();
        state.set_recording(false);
        Self::serve(ga4::router(state.clone()), state, Arrivals::new(events, epoch, GA4_MARKER)).await
    }
}

impl<S> Sim<S> {
    /// Serves a simulator's `router` on 127.0.0.1:0 behind the arrival-noting layer.
    pub async fn serve(router: Router, state: S, arrivals: Arrivals) -> anyhow::Result<Self> {
        let arrivals = Arc::new(arrivals);
        let app = router.layer(axum::middleware::from_fn_with_state(arrivals.clone(), note_arrival));
        let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot bind the simulator")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                eprintln!("a simulator stopped: {e}");
            }
        });
        Ok(Self { base_url, state, arrivals, stop, task })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
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
    fn notes_each_transaction_id() {
        let a = Arrivals::new(3, Instant::now(), GA4_MARKER);
        a.note(br#"{"events":[{"params":{"transaction_id":"0"}},{"params":{"transaction_id":"2"}}]}"#, 5);
        a.note(br#"{"events":[{"params":{"transaction_id":"2"}},{"params":{"transaction_id":"9"}}]}"#, 6);
        assert_eq!((a.get(0), a.get(1), a.get(2)), (Some(5), None, Some(6)));
        assert_eq!(a.repeats.load(Ordering::Relaxed), 1);
        assert_eq!(a.unknown.load(Ordering::Relaxed), 1);
        assert_eq!((a.arrived(), a.last()), (2, Some(6)));
        assert!(GA4_MARKER.matches("/mp/collect") && !GA4_MARKER.matches("/debug/mp/collect"));
    }

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.0), "999");
        assert_eq!(grouped(1234567.4), "1,234,567");
    }
}
