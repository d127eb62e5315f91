//! Logs and metrics. Metrics live in a registry per running instance (no global state), rendered
//! at `GET /metrics` in OpenMetrics for a scraper that asks for it, else in the Prometheus text
//! format 0.0.4 (what `curl` and `promtool check metrics` read).

pub mod lanes;

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::core::{FollowUp, QueueStat};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub source: String,
    pub kind: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub destination: String,
    pub state: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub destination: String,
    pub status_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    pub destination: String,
}

/// An HTTP request by its route pattern (`/v1/events/{id}`, never the concrete path, so the
/// label set stays small), method and status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: String,
    pub route: String,
    pub status: String,
}

/// A platform's final answer about a request it took for processing (Google's status follow-ups).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfirmationLabels {
    pub destination: String,
    /// `accepted`, `partial`, `failed` (the platform said so) or `unconfirmed` (it never did).
    pub result: String,
}

/// Every `result` a confirmation can have: each is present at 0 before the first.
pub const CONFIRMATION_RESULTS: [&str; 4] = ["accepted", "partial", "failed", "unconfirmed"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Every metric Surety exports.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub events: Family<EventLabels, Counter>,
    pub deliveries: Family<DeliveryLabels, Counter>,
    pub planned: Family<DestinationLabels, Counter>,
    pub sources: Family<SourceLabels, Counter>,
    pub attempts: Family<AttemptLabels, Counter>,
    pub queue_depth: Family<DestinationLabels, Gauge>,
    pub oldest_pending: Family<DestinationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    pub latency: Family<DestinationLabels, Histogram>,
    pub circuit_open: Family<DestinationLabels, Gauge>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<HttpLabels, Histogram>,
    /// Received minus occurred, for every event stored, by source and kind.
    pub lateness: Family<LatenessLabels, Histogram>,
    /// Status questions asked of a platform about requests it took for processing.
    pub follow_up_polls: Family<DestinationLabels, Counter>,
    /// The platform's final answers to them, and requests given up as unconfirmed.
    pub follow_up_confirmations: Family<ConfirmationLabels, Counter>,
    /// What each destination's worker last learnt about its platform (the console's health lines).
    pub lanes: lanes::Lanes,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatenessLabels {
    pub source: String,
    pub kind: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("surety");
        let events = Family::<EventLabels, Counter>::default();
        registry.register("events", "Events received, by source, kind and ingest status", events.clone());
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Deliveries that reached an ended state, by destination, state and reason (a replayed one counts again when it ends again)",
            deliveries.clone(),
        );
        let planned = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "deliveries_planned",
            "Deliveries planned for new events, by destination (pending, or ended at once: skipped)",
            planned.clone(),
        );
        let sources = Family::<SourceLabels, Counter>::default();
        registry.register(
            "source_messages",
            "Webhooks and Segment messages, by source and outcome (mapped, ignored, invalid, or the signature \
             or write-key refusal code)",
            sources.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "attempts",
            "Requests sent to platforms, by HTTP status code ('none' = no answer)",
            attempts.clone(),
        );
        let queue_depth = Family::<DestinationLabels, Gauge>::default();
        registry.register("queue_depth", "Deliveries pending or in flight", queue_depth.clone());
        let oldest_pending = Family::<DestinationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "oldest_pending_age_seconds",
            "Age of the oldest undelivered delivery",
            oldest_pending.clone(),
        );
        let latency = Family::<DestinationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0])
        });
        registry.register("delivery_latency_seconds", "From receipt of the event to its delivery", latency.clone());
        let circuit_open = Family::<DestinationLabels, Gauge>::default();
        registry.register(
            "circuit_open",
            "1 while a destination's circuit is open or probing (sustained failure or refused credentials)",
            circuit_open.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status code",
            http_requests.clone(),
        );
        let http_duration = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer's headers, by method, route pattern and status code",
            http_duration.clone(),
        );
        // A minute to 90 days: the last bucket is past every platform's window.
        let lateness = Family::<LatenessLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                60.0,
                600.0,
                3600.0,
                6.0 * 3600.0,
                86_400.0,
                3.0 * 86_400.0,
                7.0 * 86_400.0,
                90.0 * 86_400.0,
            ])
        });
        registry.register(
            "event_lateness_seconds",
            "Time from an event's occurrence to its receipt by Surety, for every event stored, by source and kind",
            lateness.clone(),
        );
        let follow_up_polls = Family::<DestinationLabels, Counter>::default();
        registry.register(
            "follow_up_polls",
            "Status questions asked of a platform about requests it took for processing (Google Ads' \
             requestStatus follow-ups), by destination; every destination with follow-ups, 0 before the first",
            follow_up_polls.clone(),
        );
        let follow_up_confirmations = Family::<ConfirmationLabels, Counter>::default();
        registry.register(
            "follow_up_confirmations",
            "Requests whose processing a follow-up settled, by destination and result: accepted, partial or failed \
             as the platform said, or unconfirmed when it never said within the give-up age",
            follow_up_confirmations.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "Always 1; the version of the running binary as a label", build.clone());
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_owned() }).set(1);
        Self {
            registry: Mutex::new(registry),
            events,
            deliveries,
            planned,
            sources,
            attempts,
            queue_depth,
            oldest_pending,
            latency,
            circuit_open,
            lanes: lanes::Lanes::default(),
            http_requests,
            http_duration,
            lateness,
            follow_up_polls,
            follow_up_confirmations,
        }
    }

    /// A destination whose requests are followed up: its follow-up counters exist from now on,
    /// at 0, so that rates and absences can be told apart from the first scrape.
    pub fn follows_up(&self, destination: &str) {
        drop(self.follow_up_polls.get_or_create(&DestinationLabels { destination: destination.to_owned() }));
        for result in CONFIRMATION_RESULTS {
            let labels = ConfirmationLabels { destination: destination.to_owned(), result: result.to_owned() };
            drop(self.follow_up_confirmations.get_or_create(&labels));
        }
    }

    /// One follow-up asked, and what it settled: a final answer is a confirmation; "not yet" and
    /// a failed question are polls only.
    pub fn follow_up(&self, destination: &str, answer: &FollowUp) {
        self.follow_up_polls.get_or_create(&DestinationLabels { destination: destination.to_owned() }).inc();
        let result = match answer {
            FollowUp::Accepted => "accepted",
            FollowUp::Partial { .. } => "partial",
            FollowUp::Failed { .. } => "failed",
            FollowUp::Unconfirmed(_) => "unconfirmed",
            FollowUp::NotYet | FollowUp::Error(_) => return,
        };
        let labels = ConfirmationLabels { destination: destination.to_owned(), result: result.to_owned() };
        self.follow_up_confirmations.get_or_create(&labels).inc();
    }

    /// Refreshes the gauges from the ledger, then renders everything in OpenMetrics. Every
    /// configured destination has its queue gauges, 0 when idle; with `workers` (this process
    /// runs them) its circuit gauge too, 0 until its worker says otherwise. A process without
    /// workers knows no circuit, and shows none rather than a made-up 0.
    pub fn render(
        &self,
        queues: &[QueueStat],
        destinations: &[&str],
        workers: bool,
        now: chrono::DateTime<chrono::Utc>,
    ) -> String {
        self.queue_depth.clear();
        self.oldest_pending.clear();
        for name in destinations {
            let labels = DestinationLabels { destination: (*name).to_owned() };
            self.queue_depth.get_or_create(&labels).set(0);
            self.oldest_pending.get_or_create(&labels).set(0.0);
            // A counter at 0 until the first delivery is planned, so rates exist from the start.
            drop(self.planned.get_or_create(&labels));
            if workers {
                // Created at 0 if the worker has not set it yet; an existing value is kept.
                drop(self.circuit_open.get_or_create(&labels));
            }
        }
        for q in queues {
            let labels = DestinationLabels { destination: q.destination.clone() };
            self.queue_depth.get_or_create(&labels).set(q.depth as i64);
            let age = q.oldest.map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0).unwrap_or(0.0);
            self.oldest_pending.get_or_create(&labels).set(age);
        }
        let mut out = String::new();
        if let Ok(registry) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        }
        out
    }

    /// Counts one answered HTTP request and its duration.
    pub fn http_request(&self, labels: HttpLabels, seconds: f64) {
        self.http_duration.get_or_create(&labels).observe(seconds);
        self.http_requests.get_or_create(&labels).inc();
    }

    pub fn source(&self, source: &str, outcome: &str) {
        self.sources_by(source, outcome, 1);
    }

    /// Counts `n` messages of a source with one outcome.
    pub fn sources_by(&self, source: &str, outcome: &str, n: u64) {
        self.sources.get_or_create(&SourceLabels { source: source.to_owned(), outcome: outcome.to_owned() }).inc_by(n);
    }

    /// A delivery planned for a new event.
    pub fn planned(&self, destination: &str) {
        self.planned.get_or_create(&DestinationLabels { destination: destination.to_owned() }).inc();
    }

    /// A delivery that reached an ended state.
    pub fn delivery(&self, destination: &str, state: &str, reason: Option<&str>) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                destination: destination.to_owned(),
                state: state.to_owned(),
                reason: reason.unwrap_or("").to_owned(),
            })
            .inc();
    }
}

/// OpenMetrics text (as `render` writes it) in the Prometheus text format 0.0.4: a counter's
/// family takes its samples' `_total` name, and the OpenMetrics-only lines (`# UNIT`, `# EOF`) go.
pub fn to_prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            counters.contains(name).then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Starts logging: text or JSON lines on stderr, filtered by `RUST_LOG` or `level`. Colours only
/// when stderr is a terminal: a file, a pipe or the journal gets plain text.
pub fn init_logging(format: &str, level: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if format == "json" { builder.json().try_init() } else { builder.try_init() };
}
