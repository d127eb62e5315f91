//! The three measurements: batched ingest, single-event ingest, and ingest→delivered against the
//! GA4 simulator. Each starts its own server with an empty ledger, so one scenario's ledger size
//! does not slow the next.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use chrono::{SecondsFormat, Utc};
use hdrhistogram::Histogram;
use serde::Deserialize;

use super::harness::{self, DeliverySpec, Percentiles, Server, ServerSpec, Sim, GA4_DESTINATION};
use super::{Measured, Report};

/// Events per `{"events": [...]}` request (the API's maximum).
const BATCH: usize = 1000;
/// Distinct GA4 client ids the delivery scenario spreads its events over.
const CLIENT_IDS: u64 = 2000;
/// How many client ids are "active" at once in the generated stream (see [`client_of`]).
const ACTIVE_CLIENTS: u64 = 50;

pub struct Batched {
    pub events: usize,
    pub clients: usize,
    pub synchronous: String,
}

pub struct Single {
    pub requests: usize,
    pub concurrency: usize,
    pub synchronous: String,
}

pub struct Delivered {
    pub events: usize,
    pub clients: usize,
    pub claim_batch: usize,
    pub ga4_concurrency: usize,
    pub synchronous: String,
}

/// a. `{"events": [...1000...]}` from a few concurrent clients; nothing routed.
pub async fn batched(p: &Batched, report: &Report) -> anyhow::Result<Measured> {
    let server = Server::start(&ServerSpec { synchronous: &p.synchronous, delivery: None }).await?;
    report.line(format!(
        "    {} events in batches of {BATCH}, {} concurrent clients, no destination (events stay not_routed)",
        harness::grouped(p.events as f64),
        p.clients
    ));
    let cpu = harness::Cpu::now();
    let run = ingest_batches(&server.base_url, p.events, p.clients, None).await;
    let cpu = harness::Cpu::since(&cpu);
    server.stop().await?;
    let run = run?;
    Ok(Measured {
        count: p.events as u64,
        seconds: run.elapsed.as_secs_f64(),
        latency: Percentiles::of(&run.latency),
        latency_of: "per 1000-event request",
        extra: cpu.into_iter().collect(),
    })
}

/// b. One event per request at fixed concurrency; nothing routed.
pub async fn single(p: &Single, report: &Report) -> anyhow::Result<Measured> {
    let server = Server::start(&ServerSpec { synchronous: &p.synchronous, delivery: None }).await?;
    report.line(format!(
        "    {} requests of one event each, {} concurrent clients, no destination",
        harness::grouped(p.requests as f64),
        p.concurrency
    ));
    let client = harness::client(p.concurrency)?;
    let url = format!("{}/v1/events", server.base_url);
    let occurred = occurred_at();
    let next = Arc::new(AtomicU64::new(0));
    let cpu = harness::Cpu::now();
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
    let cpu = harness::Cpu::since(&cpu);
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
        extra: cpu
            .into_iter()
            .chain([format!(
                "for comparison, GET /healthz (no body, no store) at the same concurrency: {} requests/s",
                harness::grouped(floor)
            )])
            .collect(),
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

/// c. Ingest in batches, then wait until the ledger holds every delivery as ended; the GA4
/// simulator must have received each event exactly once.
pub async fn delivered(p: &Delivered, report: &Report) -> anyhow::Result<Measured> {
    let epoch = Instant::now();
    let sim = Sim::start(p.events, epoch).await?;
    let server = Server::start(&ServerSpec {
        synchronous: &p.synchronous,
        delivery: Some(DeliverySpec {
            ga4_base_url: &sim.base_url,
            claim_batch: p.claim_batch,
            concurrency: p.ga4_concurrency,
        }),
    })
    .await;
    let server = match server {
        Ok(s) => s,
        Err(e) => {
            sim.stop().await;
            return Err(e);
        }
    };
    report.line(format!(
        "    {} order_paid events -> GA4 'purchase', {} client ids, batches of {BATCH} from {} clients",
        harness::grouped(p.events as f64),
        CLIENT_IDS.min(p.events as u64),
        p.clients
    ));
    report.line("    configuration used (over the shipped defaults):".to_owned());
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
    let cpu = harness::Cpu::now();
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
        let all_arrived = sim.state.event_count() >= p.events as u64;
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
                sim.state.event_count(),
                p.events
            );
        }
        tokio::time::sleep(Duration::from_millis(if all_arrived { 5 } else { 20 })).await;
    }
    let elapsed = started.elapsed();
    let cpu = harness::Cpu::since(&cpu);

    let metrics =
        client.get(format!("{}/metrics", server.base_url)).send().await.context("GET /metrics failed")?.text().await?;
    let dest = format!("destination=\"{GA4_DESTINATION}\"");
    let delivered = harness::metric_sum(&metrics, "surety_deliveries_total", &[&dest, "state=\"delivered\""]) as u64;
    let ended_otherwise: u64 = ["rejected", "skipped", "dead", "in_doubt"]
        .iter()
        .map(|s| harness::metric_sum(&metrics, "surety_deliveries_total", &[&dest, &format!("state=\"{s}\"")]) as u64)
        .sum();
    let received = sim.state.event_count();
    let requests = sim.state.request_count();
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
            "GA4 requests {} ({:.1} events per request on average, at most 25)",
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
    extra.extend(cpu);
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
        latency_of: "per event, ingest request sent -> GA4 simulator received",
        extra,
    })
}

/// Whether any delivery is still pending, claimed or sending.
async fn live_deliveries(client: &reqwest::Client, base: &str) -> anyhow::Result<bool> {
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

struct IngestRun {
    elapsed: Duration,
    latency: Histogram<u64>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    accepted: usize,
    duplicate: usize,
    conflict: usize,
    invalid: usize,
}

/// Posts events `0..events` in batches of [`BATCH`] from `clients` concurrent tasks.
/// With `sent_at`, notes when each batch's request started (µs since `epoch`).
async fn ingest_batches(
    base: &str,
    events: usize,
    clients: usize,
    sent_at: Option<(Instant, Arc<Vec<AtomicU64>>)>,
) -> anyhow::Result<IngestRun> {
    let client = harness::client(clients)?;
    let url = format!("{base}/v1/events");
    let occurred = occurred_at();
    let batches = events.div_ceil(BATCH);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (client, url, occurred, next, sent_at) =
            (client.clone(), url.clone(), occurred.clone(), next.clone(), sent_at.clone());
        tasks.spawn(async move {
            let mut h = harness::histogram();
            loop {
                let b = next.fetch_add(1, Ordering::Relaxed) as usize;
                if b >= batches {
                    return Ok::<_, anyhow::Error>(h);
                }
                let range = (b * BATCH)..((b + 1) * BATCH).min(events);
                let len = range.len();
                let mut body = String::with_capacity(len * 520 + 16);
                body.push_str("{\"events\":[");
                for (k, n) in range.enumerate() {
                    if k > 0 {
                        body.push(',');
                    }
                    write_event(&mut body, n as u64, client_of(n as u64, events as u64), &occurred);
                }
                body.push_str("]}");
                let t = Instant::now();
                if let Some((epoch, sent_at)) = &sent_at {
                    sent_at[b].store(t.saturating_duration_since(*epoch).as_micros() as u64, Ordering::Relaxed);
                }
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .context("batch POST failed")?;
                let status = r.status();
                let bytes = r.bytes().await.context("reading the answer failed")?;
                harness::record(&mut h, t.elapsed());
                ensure!(status == reqwest::StatusCode::OK, "batch {b} was answered {status}: {}", excerpt(&bytes));
                let a: BatchAnswer =
                    serde_json::from_slice(&bytes).context("the batch answer is not the documented JSON")?;
                ensure!(
                    a.accepted == len,
                    "batch {b}: {} accepted of {len} ({} duplicate, {} conflict, {} invalid): {}",
                    a.accepted,
                    a.duplicate,
                    a.conflict,
                    a.invalid,
                    excerpt(&bytes)
                );
            }
        });
    }
    let latency = merge(&mut tasks).await?;
    Ok(IngestRun { elapsed: started.elapsed(), latency })
}

/// Waits for every task and merges their histograms; the first error wins.
async fn merge(tasks: &mut tokio::task::JoinSet<anyhow::Result<Histogram<u64>>>) -> anyhow::Result<Histogram<u64>> {
    let mut all = harness::histogram();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined.context("a client task panicked").and_then(|r| r) {
            Ok(h) => {
                let _ = all.add(&h);
            }
            Err(e) => {
                if first_error.is_none() {
                    first_error = Some(e);
                    // The others would only pile up more of the same error.
                    tasks.abort_all();
                }
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
}

/// Ten minutes ago: well inside GA4's 72-hour window.
pub(super) fn occurred_at() -> String {
    (Utc::now() - chrono::Duration::minutes(10)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The client id of event `n` of `total`: a window of [`ACTIVE_CLIENTS`] ids slides over all
/// [`CLIENT_IDS`], and each event picks one of the window at random. A shopper's events thus
/// cluster in time, as real ones do, and each id gets about `total / CLIENT_IDS` events — which
/// gives GA4's request-level grouping (same client, consent and user data) something to batch.
pub(super) fn client_of(n: u64, total: u64) -> u64 {
    let clients = CLIENT_IDS.min(total.max(1));
    let base = n * clients / total.max(1);
    (base + splitmix(n) % ACTIVE_CLIENTS.min(clients)) % clients
}

/// A fixed pseudo-random mix of `x` (SplitMix64), so runs are repeatable.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One realistic `order_paid` event for order `n` by client `c`: value, an item, browser ids,
/// an email (hashed at ingest) and consent. Its id is derived (`order:N:order_paid`), and its
/// GA4 `transaction_id` is `N`, which the simulator layer reads back.
pub(super) fn write_event(out: &mut String, n: u64, c: u64, occurred: &str) {
    let cents = 1_000 + splitmix(n ^ 0xABCD) % 20_000;
    let (euros, rest) = (cents / 100, cents % 100);
    let _ = write!(
        out,
        r#"{{"kind":"order_paid","occurred_at":"{occurred}","subject":{{"type":"order","id":"{n}"}},"value":{euros}.{rest:02},"currency":"EUR","items":[{{"id":"SKU-{sku}","name":"Linen shirt","price":{euros}.{rest:02},"quantity":1}}],"identity":{{"client_id":"{cid}.1700000000","session_id":"17000{c:05}","email":"Shopper.{c}@Example.com","country":"DE"}},"consent":{{"analytics":"granted","ad_user_data":"granted","ad_personalization":"denied"}},"attributes":{{"payment_method":"card"}}}}"#,
        sku = n % 97,
        cid = 1_000_000_000 + c,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_events_parse() {
        let mut s = String::new();
        write_event(&mut s, 42, 7, &occurred_at());
        let v: serde_json::Value = serde_json::from_str(&s).expect("valid JSON");
        crate::ingest::canonical::parse_event(v, "api", Utc::now(), "").expect("a valid canonical event");
    }

    #[test]
    fn every_client_gets_events_and_ids_stay_in_range() {
        let total = 100_000;
        let mut per_client = vec![0u32; CLIENT_IDS as usize];
        for n in 0..total {
            per_client[client_of(n, total) as usize] += 1;
        }
        assert!(per_client.iter().all(|&k| k > 10), "some client got too few events");
        assert_eq!(client_of(0, 1), 0);
    }
}
