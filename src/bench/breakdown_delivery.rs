//! `surety bench --breakdown`, delivery part: what the store calls a worker makes cost per
//! delivered event — routed ingest, claim, batching, mark-sending, recording — without the HTTP
//! send, one batch at a time and 16 at once (as a worker with concurrency 16 makes them).

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt as _;

use super::load::{client_of, occurred_at, write_event, BATCH};
use super::Report;
use crate::config::Config;
use crate::core::DeliveryState;
use crate::core::RequestRecord;
use crate::store::{BatchRecord, DeliveryUpdate, Intake, Store};

/// Times the store work of delivering `events` events to GA4, without the HTTP send:
/// routed ingest, claim, batching (payload building), mark-sending and recording the outcomes —
/// the same calls, in the same order, as a worker makes.
pub async fn run(events: usize, claim_batch: usize, synchronous: &str, report: &Report) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("surety-bench-").tempdir()?;
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "bench-ga4-secret")?;
    let q = |s: String| toml::Value::String(s).to_string();
    let toml = format!(
        "[storage]\nurl = {}\nsqlite_synchronous = \"{synchronous}\"\n\n[[destinations]]\nname = \"ga4\"\ntype = \"ga4\"\n\
         measurement_id = \"G-BENCH01\"\napi_secret = {}\nbase_url = \"http://127.0.0.1:9\"\n\n\
         [catalog.order_paid]\nga4 = {{ event = \"purchase\" }}\n",
        q(format!("sqlite://{}", dir.path().join("ledger.db").display())),
        q(format!("file:{}", secret.display())),
    );
    let config = Config::from_toml(&toml)?;
    let store: std::sync::Arc<dyn Store> = crate::store::open_sqlite(&config)?;
    let destinations = crate::platforms::build(&config.destinations)?;
    let dest = destinations.first().context("no destination")?.clone();
    let planner = std::sync::Arc::new(crate::delivery::planner(&config, &destinations));
    let occurred = occurred_at();
    let now = Utc::now();
    let mut t = DeliveryPhases::default();

    for chunk in 0..events.div_ceil(BATCH) {
        let mut batch = Vec::with_capacity(BATCH);
        for n in (chunk * BATCH)..((chunk + 1) * BATCH).min(events) {
            let mut json = String::with_capacity(600);
            write_event(&mut json, n as u64, client_of(n as u64, events as u64), &occurred);
            batch.push(
                crate::ingest::canonical::parse_event(serde_json::from_str(&json)?, "api", now, "")
                    .map_err(|e| anyhow::anyhow!("a generated event is invalid: {e:?}"))?,
            );
        }
        let clock = Instant::now();
        for e in &batch {
            std::hint::black_box(planner.plan(e, now));
        }
        t.plan += clock.elapsed();
        let clock = Instant::now();
        store.intake(Intake::of_events(now, batch), planner.clone()).await?;
        t.ingest += clock.elapsed();
    }

    let lease = Duration::from_secs(60);
    let (mut requests, mut claims) = (0usize, 0usize);
    loop {
        let clock = Instant::now();
        let claimed = store.claim(dest.name(), claim_batch, lease, "bench", Utc::now()).await?;
        t.claim += clock.elapsed();
        if claimed.is_empty() {
            break;
        }
        let clock = Instant::now();
        let batches = dest.batches(claimed);
        t.batch += clock.elapsed();
        requests += batches.len();
        let in_claim: usize = batches.iter().map(Vec::len).sum();
        claims += 1;
        if claims % 2 == 1 {
            // One batch at a time: what each call costs on its own (its own commit).
            for b in batches {
                let ids: Vec<i64> = b.iter().map(|c| c.delivery_id).collect();
                let clock = Instant::now();
                store.mark_sending(&ids, "bench", Utc::now()).await?;
                t.mark += clock.elapsed();
                let clock = Instant::now();
                let rec = recording(dest.name(), &b);
                t.payload += clock.elapsed();
                let clock = Instant::now();
                store.record(rec, Utc::now()).await?;
                t.record += clock.elapsed();
            }
            t.sequential_events += in_claim;
        } else {
            // 16 batches in flight, as a worker with concurrency 16 has: commits are shared.
            let clock = Instant::now();
            let jobs = batches.into_iter().map(|b| {
                let (store, name) = (store.clone(), dest.name().to_owned());
                async move {
                    let ids: Vec<i64> = b.iter().map(|c| c.delivery_id).collect();
                    store.mark_sending(&ids, "bench", Utc::now()).await?;
                    store.record(recording(&name, &b), Utc::now()).await
                }
            });
            let mut running = futures::stream::iter(jobs).buffer_unordered(16);
            while let Some(r) = running.next().await {
                r?;
            }
            t.concurrent += clock.elapsed();
            t.concurrent_events += in_claim;
        }
    }

    let per = |d: Duration| d.as_secs_f64() * 1e6 / events as f64;
    let per_of = |d: Duration, n: usize| d.as_secs_f64() * 1e6 / n.max(1) as f64;
    report.line(format!(
        "    {events} events routed to GA4, claim_batch {claim_batch}, {requests} requests ({:.1} events each); \
         no HTTP: the calls a worker makes",
        events as f64 / requests.max(1) as f64
    ));
    report.line("    phase                                             µs per event".to_owned());
    let one = t.sequential_events;
    let rows = [
        ("Store::intake, routed (prepare + SQL + commit)", per(t.ingest)),
        ("  of which Planner::plan (GA4 rules and validation)", per(t.plan)),
        ("Store::claim (reads and decodes the event bodies)", per(t.claim)),
        ("Destination::batches (builds every payload part)", per(t.batch)),
        ("one batch at a time: Store::mark_sending", per_of(t.mark, one)),
        ("one batch at a time: payload again, outcomes", per_of(t.payload, one)),
        ("one batch at a time: Store::record", per_of(t.record, one)),
        ("16 batches in flight: mark_sending + record", per_of(t.concurrent, t.concurrent_events)),
    ];
    for (name, us) in rows {
        report.line(format!("    {name:<50} {us:>8.2}"));
    }
    let writer = per(t.ingest) + per(t.claim) + per_of(t.concurrent, t.concurrent_events);
    report.line(format!(
        "    store calls, ingest to delivered (16 in flight)   {writer:>8.2}  => at most {:.0} events/s end to end",
        1e6 / writer
    ));
    Ok(())
}

#[derive(Default)]
struct DeliveryPhases {
    ingest: Duration,
    plan: Duration,
    claim: Duration,
    batch: Duration,
    mark: Duration,
    payload: Duration,
    record: Duration,
    sequential_events: usize,
    concurrent: Duration,
    concurrent_events: usize,
}

/// What a worker records after GA4 answered 204 to a batch.
fn recording(destination: &str, batch: &[crate::core::Claimed]) -> BatchRecord {
    let updates = batch
        .iter()
        .map(|c| {
            let part = crate::platforms::ga4::Ga4Event::new(&c.event, &c.route, c.strip_personal);
            DeliveryUpdate {
                delivery_id: c.delivery_id,
                state: DeliveryState::Delivered,
                reason: Some("sent".into()),
                messages: vec![],
                next_attempt_at: None,
                attempted: true,
                outcome: crate::core::AttemptOutcome::Delivered,
                detail: Some("sent: GA4 answers 2xx to any payload".into()),
                payload_sha256: Some(part.event_sha256),
                request: Some(0),
                forced: c.forced,
            }
        })
        .collect();
    let request = RequestRecord {
        endpoint: "collect",
        sent_at: Utc::now(),
        duration: Duration::from_micros(300),
        status: Some(204),
        error: None,
        response_excerpt: String::new(),
        body_sha256: "0".repeat(64),
        body: None,
    };
    BatchRecord { destination: destination.to_owned(), requests: vec![request], updates, ..BatchRecord::default() }
}
