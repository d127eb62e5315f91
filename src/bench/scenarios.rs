//! The three measurements: batched ingest, single-event ingest, and ingest→delivered against the
//! simulator of the first platform of `platforms::ALL`. Each starts its own server with an empty ledger, so one scenario's ledger size
//! does not slow the next.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};

use super::harness::{self, DeliverySpec, Percentiles, Server, ServerSpec, Sim};
use super::load::{ingest_batches, merge, occurred_at, splitmix, write_event, BATCH, CLIENT_IDS};
use super::proc::Cpu;
use super::{Measured, Report};

pub struct Batched {
    pub events: usize,
    pub clients: usize,
    pub synchronous: String,
    pub own_runtime: bool,
    /// A PostgreSQL server to measure instead of SQLite (a fresh database is created in it).
    pub postgres: Option<String>,
    /// Ended events in the fresh ledger before the scenario starts (`--history`).
    pub history: u64,
}

pub struct Single {
    pub requests: usize,
    pub concurrency: usize,
    pub synchronous: String,
    pub own_runtime: bool,
    /// A PostgreSQL server to measure instead of SQLite (a fresh database is created in it).
    pub postgres: Option<String>,
    /// Ended events in the fresh ledger before the scenario starts (`--history`).
    pub history: u64,
}

pub struct Delivered {
    pub events: usize,
    pub clients: usize,
    pub claim_batch: usize,
    /// Its destination's `concurrency`.
    pub concurrency: usize,
    pub synchronous: String,
    pub own_runtime: bool,
    /// A PostgreSQL server to measure instead of SQLite (a fresh database is created in it).
    pub postgres: Option<String>,
    /// Ended events in the fresh ledger before the scenario starts (`--history`).
    pub history: u64,
}

/// a. `{"events": [...1000...]}` from a few concurrent clients; nothing routed.
pub async fn batched(p: &Batched, report: &Report) -> anyhow::Result<Measured> {
    let server = Server::start(&ServerSpec {
        synchronous: &p.synchronous,
        delivery: None,
        own_runtime: p.own_runtime,
        postgres: p.postgres.as_deref(),
        history: p.history,
    })
    .await?;
    let filled = server.filled;
    harness::history_note(report, p.history, filled);
    report.line(format!(
        "    {} events in batches of {BATCH}, {} concurrent clients, no destination (events stay not_routed)",
        harness::grouped(p.events as f64),
        p.clients
    ));
    let cpu = Cpu::now();
    let run = ingest_batches(&server.base_url, p.events, p.clients, None).await;
    let cpu = Cpu::since(cpu);
    server.stop().await?;
    let run = run?;
    Ok(Measured {
        count: p.events as u64,
        seconds: run.elapsed.as_secs_f64(),
        latency: Percentiles::of(&run.latency),
        latency_of: "per 1000-event request",
        cpu,
        extra: vec![],
        history_fill_seconds: filled,
    })
}

/// b. One event per request at fixed concurrency; nothing routed.
pub async fn single(p: &Single, report: &Report) -> anyhow::Result<Measured> {
    let server = Server::start(&ServerSpec {
        synchronous: &p.synchronous,
        delivery: None,
        own_runtime: p.own_runtime,
        postgres: p.postgres.as_deref(),
        history: p.history,
    })
    .await?;
    let filled = server.filled;
    harness::history_note(report, p.history, filled);
    report.line(format!(
        "    {} requests of one event each, {} concurrent clients, no destination",
        harness::grouped(p.requests as f64),
        p.concurrency
    ));
    let client = harness::client(p.concurrency)?;
    let url = format!("{}/v1/events", server.base_url);
    let occurred = occurred_at();
    let next = Arc::new(AtomicU64::new(0));
    let cpu = Cpu::now();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..p.concurrency {
        let (client, url, occurred, next, total) =
            (client.clone(), url.clone(), occurred.clone(), next.clone(), p.requests);
        tasks.spawn(async move {
            let mut h = harness::histogram();
            let mut body = String::with_capacity(600);
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                if n >= total {
                    return Ok::<_, anyhow::Error>(h);
                }
                body.clear();
                write_event(&mut body, n as u64, splitmix(n as u64) % CLIENT_IDS, &occurred);
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .context("single-event POST failed")?;
                let status = r.status();
                let _ = r.bytes().await.context("reading the answer failed")?;
                harness::record(&mut h, t.elapsed());
                ensure!(status == reqwest::StatusCode::ACCEPTED, "event {n} was answered {status}, not 202");
            }
        });
    }
    let latency = merge(&mut tasks).await;
    let elapsed = started.elapsed();
    let cpu = Cpu::since(cpu);
    // The same number of clients doing nothing but GET /healthz: the ceiling that HTTP alone,
    // client and server in one process, puts on any endpoint here.
    let floor = healthz_rate(&client, &server.base_url, (p.requests / 5).max(1), p.concurrency).await;
    server.stop().await?;
    let latency = latency?;
    let floor = floor?;
    Ok(Measured {
        count: p.requests as u64,
        seconds: elapsed.as_secs_f64(),
        latency: Percentiles::of(&latency),
        latency_of: "per request",
        cpu,
        history_fill_seconds: filled,
        extra: vec![format!(
            "for comparison, GET /healthz (no body, no store) at the same concurrency: {} requests/s",
            harness::grouped(floor)
        )],
    })
}

/// Requests per second of `GET /healthz` from `concurrency` clients.
async fn healthz_rate(
    client: &reqwest::Client,
    base: &str,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let url = format!("{base}/healthz");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        tasks.spawn(async move {
            while (next.fetch_add(1, Ordering::Relaxed) as usize) < requests {
                client.get(&url).send().await?.error_for_status()?.bytes().await?;
            }
            Ok::<_, anyhow::Error>(harness::histogram())
        });
    }
    merge(&mut tasks).await?;
    Ok(requests as f64 / started.elapsed().as_secs_f64())
}

/// c. Ingest in batches, then wait until the ledger holds every delivery as ended; the first
/// platform's simulator must have received each event exactly once.
pub async fn delivered(p: &Delivered, report: &Report) -> anyhow::Result<Measured> {
    let epoch = Instant::now();
    let secrets = tempfile::Builder::new().prefix("surety-bench-").tempdir().context("cannot create a temp folder")?;
    let sim = Sim::start(&crate::platforms::ALL[0], p.events, epoch).await?;
    let server = match sim.destination_toml(secrets.path(), p.concurrency) {
        Ok(destinations) => {
            Server::start(&ServerSpec {
                synchronous: &p.synchronous,
                delivery: Some(DeliverySpec { claim_batch: p.claim_batch, destinations }),
                own_runtime: p.own_runtime,
                postgres: p.postgres.as_deref(),
                history: p.history,
            })
            .await
        }
        Err(e) => Err(e),
    };
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            sim.stop().await;
            return Err(e);
        }
    };
    let event = sim.platform.showcase.route("order_paid").map_or("", |r| r.event);
    report.line(format!(
        "    {} order_paid events -> {} '{event}', {} client ids, batches of {BATCH} from {} clients",
        harness::grouped(p.events as f64),
        sim.platform.label,
        CLIENT_IDS.min(p.events as u64),
        p.clients
    ));
    report.line("    configuration used (over the shipped defaults; secrets are files):".to_owned());
    for l in server.toml.lines().filter(|l| !l.trim().is_empty()) {
        report.line(format!("      {l}"));
    }
    let result = deliver_all(p, &server, &sim, epoch, report).await;
    let stopped = server.stop().await;
    sim.stop().await;
    let measured = result?;
    stopped?;
    Ok(measured)
}

async fn deliver_all(
    p: &Delivered,
    server: &Server,
    sim: &Sim,
    epoch: Instant,
    report: &Report,
) -> anyhow::Result<Measured> {
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..p.events.div_ceil(BATCH)).map(|_| AtomicU64::new(0)).collect());
    let filled = server.filled;
    harness::history_note(report, p.history, filled);
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
    let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_millis(20 * p.events as u64);
    let mut last_check = Instant::now();
    loop {
        let all_arrived = sim.sim.received() >= p.events as u64;
        if all_arrived || last_check.elapsed() > Duration::from_secs(1) {
            last_check = Instant::now();
            if !live_deliveries(&client, &server.base_url).await? {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "FAIL: deliveries still pending after {:.0} s ({} of {} events reached the simulator)",
                started.elapsed().as_secs_f64(),
                sim.sim.received(),
                p.events
            );
        }
        tokio::time::sleep(Duration::from_millis(if all_arrived { 5 } else { 20 })).await;
    }
    let elapsed = started.elapsed();
    let cpu = Cpu::since(cpu);

    let metrics =
        client.get(format!("{}/metrics", server.base_url)).send().await.context("GET /metrics failed")?.text().await?;
    let dest = format!("destination=\"{}\"", sim.destination);
    let delivered = harness::metric_sum(&metrics, "surety_deliveries_total", &[&dest, "state=\"delivered\""]) as u64;
    let ended_otherwise: u64 = ["rejected", "skipped", "dead", "in_doubt"]
        .iter()
        .map(|s| harness::metric_sum(&metrics, "surety_deliveries_total", &[&dest, &format!("state=\"{s}\"")]) as u64)
        .sum();
    let received = sim.sim.received();
    let requests = sim.sim.requests();
    let repeats = sim.arrivals.repeats.load(Ordering::Relaxed);
    let unknown = sim.arrivals.unknown.load(Ordering::Relaxed);

    let mut latency = harness::histogram();
    let mut missing = 0u64;
    for n in 0..p.events {
        let sent = sent_at[n / BATCH].load(Ordering::Relaxed);
        match sim.arrivals.get(n) {
            Some(at) => harness::record(&mut latency, Duration::from_micros(at.saturating_sub(sent))),
            None => missing += 1,
        }
    }
    let mut extra = vec![
        format!(
            "ingest phase {:.2} s ({} events/s, per-request p99 {:.1} ms); drain after ingest {:.2} s",
            ingested.as_secs_f64(),
            harness::grouped(p.events as f64 / ingested.as_secs_f64()),
            Percentiles::of(&ingest.latency).p99,
            (elapsed - ingested).as_secs_f64()
        ),
        format!(
            "{} requests {} ({:.1} events per request on average)",
            sim.platform.label,
            harness::grouped(requests as f64),
            received as f64 / requests.max(1) as f64
        ),
        format!(
            "ledger: {} delivered, {} ended otherwise; simulator: {} events received, {} repeated, {} missing",
            harness::grouped(delivered as f64),
            ended_otherwise,
            harness::grouped(received as f64),
            repeats,
            missing
        ),
    ];
    let exact =
        received == p.events as u64 && delivered == p.events as u64 && repeats == 0 && missing == 0 && unknown == 0;
    if !exact {
        extra.push(format!(
            "FAIL: the simulator must receive exactly {} events once each and the ledger record them delivered",
            p.events
        ));
        for l in &extra {
            report.line(format!("    {l}"));
        }
        bail!("FAIL: delivery check failed (received {received}, delivered {delivered}, repeated {repeats}, missing {missing})");
    }
    extra.push(format!(
        "check: the simulator received exactly {} events, each once: OK",
        harness::grouped(p.events as f64)
    ));
    Ok(Measured {
        count: p.events as u64,
        seconds: elapsed.as_secs_f64(),
        latency: Percentiles::of(&latency),
        latency_of: "per event, ingest request sent -> the platform simulator received",
        cpu,
        extra,
        history_fill_seconds: filled,
    })
}

/// Whether any delivery is still pending, claimed or sending.
pub(super) async fn live_deliveries(client: &reqwest::Client, base: &str) -> anyhow::Result<bool> {
    for state in ["pending", "claimed", "sending"] {
        let rows: Vec<serde_json::Value> = client
            .get(format!("{base}/v1/deliveries?state={state}&limit=1"))
            .send()
            .await
            .context("GET /v1/deliveries failed")?
            .error_for_status()?
            .json()
            .await?;
        if !rows.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}
