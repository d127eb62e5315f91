//! `surety bench`: throughput, latency percentiles and peak memory of ingest and delivery, measured
//! against a real Surety (`crate::run` on a loopback port, durable SQLite in a temp folder) and the
//! platform simulators, all in this one process. Bounded counts; it stops by itself.
//!
//! a. batched ingest, b. single-event ingest, c. ingest→delivered to the first platform of
//! `platforms::ALL`, d. ingest→delivered to every platform of `platforms::ALL` at once, rated per
//! destination. See `--help`. The bench names no platform: each says what it needs through
//! `platforms::Simulator` and `platforms::Showcase`.

mod breakdown;
mod breakdown_delivery;
mod harness;
mod history;
mod load;
mod platforms;
mod proc;
mod scenarios;
mod summary;

use serde::Serialize;

use self::harness::Percentiles;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Smaller run, for a quick look (a 20k events, b 10k requests, c 20k deliveries, d 5k events
    /// to each platform).
    #[arg(long)]
    pub quick: bool,
    /// Events for the batched-ingest (a), delivery (c) and every-platform (d) scenarios
    /// [default: 200000, 100000 and 25000].
    #[arg(long, value_name = "N")]
    pub events: Option<usize>,
    /// Requests for the single-event scenario (b) [default: 100000].
    #[arg(long, value_name = "N")]
    pub requests: Option<usize>,
    /// Run only these scenarios.
    #[arg(long, value_delimiter = ',', value_name = "a,b,c,d")]
    pub only: Vec<Scenario>,
    /// Concurrent clients posting batches (a, c).
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Concurrent clients posting single events (b).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// `storage.sqlite_synchronous`: full (durable: fsync at every commit) or normal.
    #[arg(long, default_value = "full", value_parser = ["full", "normal"])]
    pub synchronous: String,
    /// `worker.claim_batch` for the delivery scenario (c).
    #[arg(long, default_value_t = 1000)]
    pub claim_batch: usize,
    /// The `concurrency` (requests in flight) of the delivery scenario's (c) destination, of the
    /// first platform listed (the flag's spelling is the command line's contract).
    #[arg(long = "ga4-concurrency", default_value_t = 16)]
    pub c_concurrency: usize,
    /// Each destination's `concurrency` in the every-platform scenario (d).
    #[arg(long, default_value_t = 8)]
    pub platform_concurrency: usize,
    /// Measure a PostgreSQL ledger instead of SQLite: the URL of a server and database (e.g.
    /// postgres://root@127.0.0.1:5432/test) in which each scenario creates a fresh database.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Run the server on the client's tokio runtime instead of one of its own (to see how much a
    /// shared scheduler costs; by default the server has its own, like a separate process).
    #[arg(long)]
    pub one_runtime: bool,
    /// Also time the phases of ingest (library calls, no HTTP) to show where the time goes.
    #[arg(long)]
    pub breakdown: bool,
    /// Before each selected scenario, fill its fresh ledger with N ended events (delivered, with
    /// their attempts, requests and search keys, spread over the last 90 days), written straight
    /// into the tables: to measure ingest and claim on a ledger with a long history.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub history: u64,
    /// Print the results as one JSON document on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    A,
    B,
    C,
    D,
}

/// Where human-readable lines go: stdout, or stderr when stdout carries the JSON.
pub(crate) struct Report {
    json: bool,
}

impl Report {
    pub(crate) fn line(&self, text: String) {
        if self.json {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }
}

/// What a scenario measured.
pub(crate) struct Measured {
    pub count: u64,
    pub seconds: f64,
    pub latency: Percentiles,
    pub latency_of: &'static str,
    pub cpu: Option<proc::CpuUse>,
    pub extra: Vec<String>,
    /// Seconds filling the ledger's history took (`--history`), if it had one.
    pub history_fill_seconds: Option<f64>,
}

#[derive(Serialize)]
struct Row {
    scenario: Scenario,
    name: &'static str,
    unit: &'static str,
    count: u64,
    seconds: f64,
    per_second: f64,
    latency_ms: Percentiles,
    latency_of: &'static str,
    /// Process-wide peak RSS after the scenario (client, server and simulator together).
    peak_rss_mib: Option<f64>,
    /// CPU used during the scenario; `other_cores` above 0.25 means a busy machine.
    cpu: Option<proc::CpuUse>,
    /// `count` per CPU-second of this process: comparable between busy and idle machines.
    per_cpu_second: Option<f64>,
    target: &'static str,
    target_met: Option<bool>,
    notes: Vec<String>,
    /// Ended events the ledger held before the scenario started (`--history`).
    history_events: u64,
    /// How long writing them took.
    history_fill_seconds: Option<f64>,
    /// Per destination (d): delivered events/s, latency and the exactly-once/accepted check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    destinations: Vec<platforms::DestinationRate>,
}

#[derive(Serialize)]
struct Output<'a> {
    synchronous: &'a str,
    cpus: usize,
    /// Ended events each scenario's ledger held before it started (`--history`).
    history: u64,
    scenarios: Vec<Row>,
    failures: Vec<String>,
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = Report { json: args.json };
    let (a_events, b_requests, c_events, d_events) =
        if args.quick { (20_000, 10_000, 20_000, 5_000) } else { (200_000, 100_000, 100_000, 25_000) };
    let a_events = args.events.unwrap_or(a_events).max(1);
    let c_events = args.events.unwrap_or(c_events).max(1);
    let d_events = args.events.unwrap_or(d_events).max(1);
    let b_requests = args.requests.unwrap_or(b_requests).max(1);
    let selected = |s| args.only.is_empty() || args.only.contains(&s);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

    let ledger = match &args.postgres {
        Some(_) => "PostgreSQL (a fresh database per scenario; the server's own durability settings)".to_owned(),
        None => format!(
            "SQLite storage.sqlite_synchronous = \"{}\"{}",
            args.synchronous,
            if args.synchronous == "full" {
                " (durable: fsync at every commit)"
            } else {
                " (NOT durable on power loss)"
            }
        ),
    };
    report.line(format!(
        "surety bench{} — {ledger}, loopback HTTP, {cpus} CPU(s)",
        if args.quick { " --quick" } else { "" },
    ));
    if args.history > 0 {
        report.line(format!(
            "Each scenario's ledger starts with a history of {} ended events (--history), written before its server starts.",
            harness::grouped(args.history as f64)
        ));
    }
    report.line(
        "Client, server and platform simulators share this process, its CPUs and its memory (the server on a \
         tokio runtime of its own, as a separate process would have): rates are what one machine does with \
         all of them, and peak RSS (VmHWM) counts them all."
            .to_owned(),
    );

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    if selected(Scenario::A) {
        report.line(String::new());
        report.line("[a] batched ingest — POST /v1/events {\"events\": [1000 events]}".to_owned());
        let p = scenarios::Batched {
            events: a_events,
            clients: args.clients.max(1),
            synchronous: args.synchronous.clone(),
            own_runtime: !args.one_runtime,
            postgres: args.postgres.clone(),
            history: args.history,
        };
        match scenarios::batched(&p, &report).await {
            Ok(m) => rows.push(row(Scenario::A, "batched ingest", "events", m, &report)),
            Err(e) => fail(&report, &mut failures, "a", e),
        }
    }
    if selected(Scenario::B) {
        report.line(String::new());
        report.line("[b] single-event ingest — POST /v1/events, one event per request".to_owned());
        let p = scenarios::Single {
            requests: b_requests,
            concurrency: args.concurrency.max(1),
            synchronous: args.synchronous.clone(),
            own_runtime: !args.one_runtime,
            postgres: args.postgres.clone(),
            history: args.history,
        };
        match scenarios::single(&p, &report).await {
            Ok(m) => rows.push(row(Scenario::B, "single-event ingest", "requests", m, &report)),
            Err(e) => fail(&report, &mut failures, "b", e),
        }
    }
    if selected(Scenario::C) {
        report.line(String::new());
        report.line(format!("[c] ingest -> delivered to the {} simulator", crate::platforms::ALL[0].label));
        let p = scenarios::Delivered {
            events: c_events,
            clients: args.clients.max(1),
            claim_batch: args.claim_batch.max(1),
            concurrency: args.c_concurrency.max(1),
            synchronous: args.synchronous.clone(),
            own_runtime: !args.one_runtime,
            postgres: args.postgres.clone(),
            history: args.history,
        };
        match scenarios::delivered(&p, &report).await {
            Ok(m) => rows.push(row(Scenario::C, "ingest -> delivered", "events", m, &report)),
            Err(e) => fail(&report, &mut failures, "c", e),
        }
    }
    if selected(Scenario::D) {
        report.line(String::new());
        let labels: Vec<&str> = crate::platforms::ALL.iter().map(|p| p.label).collect();
        report.line(format!("[d] ingest -> delivered to {} simulators at once", harness::human_list(&labels)));
        let p = platforms::Platforms {
            events: d_events,
            clients: args.clients.max(1),
            claim_batch: args.claim_batch.max(1),
            concurrency: args.platform_concurrency.max(1),
            synchronous: args.synchronous.clone(),
            own_runtime: !args.one_runtime,
            postgres: args.postgres.clone(),
            history: args.history,
        };
        match platforms::delivered_everywhere(&p, &report).await {
            Ok((m, rates)) => {
                let mut r = row(Scenario::D, "ingest -> 4 platforms", "deliveries", m, &report);
                r.destinations = rates;
                rows.push(r);
            }
            Err(e) => fail(&report, &mut failures, "d", e),
        }
    }

    if args.breakdown {
        report.line(String::new());
        report.line("[breakdown] where a batch's ingest time goes".to_owned());
        if let Err(e) = breakdown::run(if args.quick { 5 } else { 50 }, &args.synchronous, &report).await {
            fail(&report, &mut failures, "breakdown", e);
        }
        report.line(String::new());
        report.line("[breakdown] where a delivery's time goes in the store (c)".to_owned());
        let events = if args.quick { 10_000 } else { 50_000 };
        if let Err(e) = breakdown_delivery::run(events, args.claim_batch.max(1), &args.synchronous, &report).await {
            fail(&report, &mut failures, "breakdown", e);
        }
    }
    for r in rows.iter_mut().filter(|r| r.history_fill_seconds.is_some()) {
        r.history_events = args.history;
    }
    summary::summary(&rows, &report);
    if args.json {
        let out = Output {
            synchronous: &args.synchronous,
            cpus,
            history: args.history,
            scenarios: rows,
            failures: failures.clone(),
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("the benchmark failed: {}", failures.join("; "))
    }
}

fn fail(report: &Report, failures: &mut Vec<String>, scenario: &str, e: anyhow::Error) {
    let text = format!("{e:#}");
    let text = text.strip_prefix("FAIL: ").unwrap_or(&text).to_owned();
    report.line(format!("    FAIL [{scenario}]: {text}"));
    failures.push(format!("[{scenario}] {text}"));
}

fn row(scenario: Scenario, name: &'static str, unit: &'static str, m: Measured, report: &Report) -> Row {
    let per_second = m.count as f64 / m.seconds.max(1e-9);
    let (target, target_met) = match scenario {
        Scenario::A => (">= 50,000 events/s", Some(per_second >= 50_000.0)),
        Scenario::B => (">= 10,000 requests/s, p99 <= 10 ms", Some(per_second >= 10_000.0 && m.latency.p99 <= 10.0)),
        Scenario::C => ("none (each event delivered exactly once)", None),
        Scenario::D => ("none (each platform takes each event exactly once)", None),
    };
    let rss = proc::peak_rss_mib();
    let l = m.latency;
    report.line(format!(
        "    {} {unit} in {:.2} s = {} {unit}/s{}",
        harness::grouped(m.count as f64),
        m.seconds,
        harness::grouped(per_second),
        match target_met {
            Some(true) => format!("   target {target}: met"),
            Some(false) => format!("   target {target}: MISSED"),
            None => String::new(),
        }
    ));
    report.line(format!(
        "    latency ({}): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        m.latency_of, l.p50, l.p90, l.p99, l.max
    ));
    for e in &m.extra {
        report.line(format!("    {e}"));
    }
    if let Some(cpu) = &m.cpu {
        report.line(format!("    {}", cpu.describe(m.count, unit)));
        if let Some(w) = cpu.describe_writer() {
            report.line(format!("    {w}"));
        }
    }
    report.line(format!(
        "    peak RSS so far {} (whole process: client + server + simulators)",
        rss.map_or_else(|| "unknown".to_owned(), |r| format!("{r:.1} MiB"))
    ));
    Row {
        scenario,
        name,
        unit,
        count: m.count,
        seconds: m.seconds,
        per_second,
        latency_ms: l,
        latency_of: m.latency_of,
        peak_rss_mib: rss,
        cpu: m.cpu,
        per_cpu_second: m.cpu.map(|c| m.count as f64 / c.process_seconds.max(1e-9)),
        target,
        target_met,
        notes: m.extra,
        history_events: 0,
        history_fill_seconds: m.history_fill_seconds,
        destinations: Vec::new(),
    }
}
