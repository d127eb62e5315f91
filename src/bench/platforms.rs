//! d. Ingest → delivered to every platform of `platforms::ALL` at once: every `order_paid` is
//! routed to each platform's simulator, each destination with its own worker and concurrency.
//! Reports delivered events/s per destination (first ingest request to the last event its
//! simulator took) and checks each one: its simulator took every event exactly once, and the
//! ledger holds every delivery delivered — and accepted where the platform says so
//! (`Showcase::accepts`, after its later confirmation if it gives one: `Showcase::confirms_later`).

mod sims;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

use self::sims::Sims;
use super::harness::{self, DeliverySpec, Percentiles, Server, ServerSpec};
use super::load::{ingest_batches, BATCH, CLIENT_IDS};
use super::proc::Cpu;
use super::scenarios::live_deliveries;
use super::{Measured, Report};

pub struct Platforms {
    pub events: usize,
    pub clients: usize,
    pub claim_batch: usize,
    /// Requests in flight per destination.
    pub concurrency: usize,
    pub synchronous: String,
    pub own_runtime: bool,
    /// A PostgreSQL server to measure instead of SQLite (a fresh database is created in it).
    pub postgres: Option<String>,
    /// Ended events in the fresh ledger before the scenario starts (`--history`).
    pub history: u64,
}

/// One destination's share of the scenario.
#[derive(Clone, Debug, Serialize)]
pub struct DestinationRate {
    pub destination: String,
    pub platform: &'static str,
    pub events: u64,
    /// From the first ingest request to the last event the simulator took.
    pub seconds: f64,
    pub per_second: f64,
    /// Per event: ingest request sent → the simulator took it.
    pub latency_ms: Percentiles,
    /// Requests the simulator answered with success.
    pub requests: u64,
    /// Deliveries the ledger holds as delivered.
    pub delivered: u64,
    /// Of those, accepted by the platform (`None`: the platform confirms nothing).
    pub accepted: Option<u64>,
    /// Every event taken exactly once, every delivery delivered (and accepted where it can be).
    pub check_passed: bool,
}

/// d. Ingest in batches, wait until every delivery ended and the platforms that confirm later
/// confirmed what they took, then check and rate each destination.
pub async fn delivered_everywhere(p: &Platforms, report: &Report) -> anyhow::Result<(Measured, Vec<DestinationRate>)> {
    let epoch = Instant::now();
    let secrets = tempfile::Builder::new().prefix("surety-bench-").tempdir().context("cannot create a temp folder")?;
    let sims = Sims::start(p.events, epoch).await?;
    let destinations = match sims.destinations(secrets.path(), p.concurrency) {
        Ok(d) => d,
        Err(e) => {
            sims.stop().await;
            return Err(e);
        }
    };
    let spec = ServerSpec {
        synchronous: &p.synchronous,
        delivery: Some(DeliverySpec { claim_batch: p.claim_batch, destinations }),
        own_runtime: p.own_runtime,
        postgres: p.postgres.as_deref(),
        history: p.history,
    };
    let server = match Server::start(&spec).await {
        Ok(s) => s,
        Err(e) => {
            sims.stop().await;
            return Err(e);
        }
    };
    let destinations = sims.lanes.len();
    report.line(format!(
        "    {} order_paid events, each to {destinations} destinations ({} deliveries), {} client ids, batches of \
         {BATCH} from {} clients",
        harness::grouped(p.events as f64),
        harness::grouped((destinations * p.events) as f64),
        CLIENT_IDS.min(p.events as u64),
        p.clients
    ));
    for note in sims.lanes.iter().filter_map(|sim| sim.platform.showcase.bench_note) {
        report.line(format!("    {note}"));
    }
    report.line("    configuration used (over the shipped defaults; secrets are files):".to_owned());
    for l in server.toml.lines().filter(|l| !l.trim().is_empty()) {
        report.line(format!("      {l}"));
    }
    let result = deliver_all(p, &server, &sims, epoch, report).await;
    let stopped = server.stop().await;
    sims.stop().await;
    let measured = result?;
    stopped?;
    Ok(measured)
}

async fn deliver_all(
    p: &Platforms,
    server: &Server,
    sims: &Sims,
    epoch: Instant,
    report: &Report,
) -> anyhow::Result<(Measured, Vec<DestinationRate>)> {
    let lanes = &sims.lanes;
    let n = p.events as u64;
    let filled = server.filled;
    harness::history_note(report, p.history, filled);
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..p.events.div_ceil(BATCH)).map(|_| AtomicU64::new(0)).collect());
    let cpu = Cpu::now();
    let started = Instant::now();
    let ingest = ingest_batches(&server.base_url, p.events, p.clients, Some((epoch, sent_at.clone()))).await?;
    let ingested = started.elapsed();
    report.line(format!(
        "    ingest done after {:.2} s ({} events/s); waiting for every delivery to end",
        ingested.as_secs_f64(),
        harness::grouped(p.events as f64 / ingested.as_secs_f64())
    ));

    let client = harness::client(4)?;
    let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_millis(80 * p.events as u64);
    loop {
        let all_arrived = lanes.iter().all(|l| l.sim.received() >= n);
        if all_arrived && !live_deliveries(&client, &server.base_url).await? {
            break;
        }
        if Instant::now() > deadline {
            let got: Vec<String> = lanes.iter().map(|l| format!("{} {}", l.destination, l.sim.received())).collect();
            bail!(
                "FAIL: deliveries still pending after {:.0} s (of {n} events the simulators took: {})",
                started.elapsed().as_secs_f64(),
                got.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(if all_arrived { 20 } else { 100 })).await;
    }
    let elapsed = started.elapsed();
    let cpu = Cpu::since(cpu);

    // A platform that confirms later took the requests "for processing"; its status check then
    // confirms them.
    let ledger = server.ledger().await?;
    let confirm_started = Instant::now();
    let confirm_deadline = confirm_started + Duration::from_secs(60) + Duration::from_millis(p.events as u64);
    let mut counts = ledger.counts().await?;
    let unconfirmed = |counts: &crate::store::Counts| {
        lanes
            .iter()
            .filter(|l| l.platform.showcase.confirms_later.is_some())
            .any(|l| count(counts, &l.destination, "delivered", Some("accepted")) < n)
    };
    while unconfirmed(&counts) && Instant::now() < confirm_deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        counts = ledger.counts().await?;
    }
    let confirmed_after = confirm_started.elapsed();

    let start_us = lanes[0].arrivals.micros_since_epoch(started);
    let mut all_latency = harness::histogram();
    let mut rates = Vec::with_capacity(lanes.len());
    let mut extra = vec![format!(
        "ingest phase {:.2} s ({} events/s, per-request p99 {:.1} ms); every delivery ended after {:.2} s; \
         the later confirmations came {:.2} s after",
        ingested.as_secs_f64(),
        harness::grouped(p.events as f64 / ingested.as_secs_f64()),
        Percentiles::of(&ingest.latency).p99,
        elapsed.as_secs_f64(),
        confirmed_after.as_secs_f64()
    )];
    let mut failures = Vec::new();
    for lane in lanes {
        let mut latency = harness::histogram();
        for k in 0..p.events {
            if let Some(at) = lane.arrivals.get(k) {
                let sent = sent_at[k / BATCH].load(Ordering::Relaxed);
                harness::record(&mut latency, Duration::from_micros(at.saturating_sub(sent)));
            }
        }
        let _ = all_latency.add(&latency);
        let last = lane.arrivals.last().unwrap_or(start_us);
        let seconds = (last.saturating_sub(start_us) as f64 / 1e6).max(1e-6);
        let (received, requests) = (lane.sim.received(), lane.sim.requests());
        let (arrived, repeats, unknown) = (
            lane.arrivals.arrived() as u64,
            lane.arrivals.repeats.load(Ordering::Relaxed),
            lane.arrivals.unknown.load(Ordering::Relaxed),
        );
        let delivered = count(&counts, &lane.destination, "delivered", None);
        let accepted =
            lane.platform.showcase.accepts.then(|| count(&counts, &lane.destination, "delivered", Some("accepted")));
        let ended_otherwise: u64 = ["rejected", "skipped", "dead", "in_doubt"]
            .iter()
            .map(|s| count(&counts, &lane.destination, s, None))
            .sum();
        let passed = received == n
            && arrived == n
            && repeats == 0
            && unknown == 0
            && delivered == n
            && accepted.is_none_or(|a| a == n);
        let rate = DestinationRate {
            destination: lane.destination.clone(),
            platform: lane.platform.label,
            events: n,
            seconds,
            per_second: n as f64 / seconds,
            latency_ms: Percentiles::of(&latency),
            requests,
            delivered,
            accepted,
            check_passed: passed,
        };
        extra.push(format!(
            "{:<10} {} events/s delivered ({:.2} s to the last), latency p50 {:.1} ms p99 {:.1} ms; {} requests \
             ({:.1} events each)",
            lane.platform.label,
            harness::grouped(rate.per_second),
            seconds,
            rate.latency_ms.p50,
            rate.latency_ms.p99,
            harness::grouped(requests as f64),
            received as f64 / requests.max(1) as f64
        ));
        let acceptance = match accepted {
            Some(a) => format!(", {} accepted", harness::grouped(a as f64)),
            None => format!(" ({} confirms nothing: reason sent)", lane.platform.label),
        };
        extra.push(format!(
            "{:<10} check: simulator took {} events, {} repeated, {} missing; ledger {} delivered{acceptance}, {} \
             ended otherwise: {}",
            "",
            harness::grouped(received as f64),
            repeats,
            n - arrived.min(n),
            harness::grouped(delivered as f64),
            ended_otherwise,
            if passed { "OK" } else { "FAIL" }
        ));
        if !passed {
            failures.push(lane.platform.label);
        }
        rates.push(rate);
    }
    if !failures.is_empty() {
        for l in &extra {
            report.line(format!("    {l}"));
        }
        bail!("FAIL: exactly-once/accepted check failed for {}", failures.join(", "));
    }
    extra.push(format!(
        "check: each of the {} simulators took exactly {} events once each, and every delivery is delivered: OK",
        lanes.len(),
        harness::grouped(n as f64)
    ));
    let measured = Measured {
        count: lanes.len() as u64 * n,
        seconds: elapsed.as_secs_f64(),
        latency: Percentiles::of(&all_latency),
        latency_of: "per delivery, ingest request sent -> platform simulator took it",
        cpu,
        extra,
        history_fill_seconds: filled,
    };
    Ok((measured, rates))
}

/// Deliveries of `destination` in `state` (and with `reason`, if given) in the ledger's totals.
fn count(counts: &crate::store::Counts, destination: &str, state: &str, reason: Option<&str>) -> u64 {
    counts
        .deliveries
        .iter()
        .filter(|(d, s, r, _)| {
            d == destination && s.as_str() == state && reason.is_none_or(|want| r.as_deref() == Some(want))
        })
        .map(|(_, _, _, n)| n)
        .sum()
}
