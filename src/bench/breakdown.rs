//! `surety bench --breakdown`: where a 1000-event batch's time goes, phase by phase, measured by
//! calling the library directly (no HTTP) on one thread — to explain the rates the scenarios get.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt as _;

use super::load::{client_of, occurred_at, write_event};
use super::Report;
use crate::config::Config;
use crate::core::{DeliveryState, Event};
use crate::delivery::RequestRecord;
use crate::store::{DeliveryUpdate, Recording, Store};

const BATCH: usize = 1000;

/// Times each phase of ingest for `batches` batches of [`BATCH`] events and prints µs per event.
pub async fn run(batches: usize, synchronous: &str, report: &Report) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("surety-bench-").tempdir()?;
    let toml = format!(
        "[storage]\nurl = {}\nsqlite_synchronous = \"{synchronous}\"\n",
        toml::Value::String(format!("sqlite://{}", dir.path().join("ledger.db").display()))
    );
    let config = Config::from_toml(&toml)?;
    let store = crate::open_store(&config)?;
    let planner = std::sync::Arc::new(crate::planner(&config, &[]));
    let occurred = occurred_at();

    let mut t = Phases::default();
    for b in 0..batches {
        let clock = Instant::now();
        let mut body = String::with_capacity(BATCH * 520);
        body.push_str("{\"events\":[");
        for k in 0..BATCH {
            if k > 0 {
                body.push(',');
            }
            let n = (b * BATCH + k) as u64;
            write_event(&mut body, n, n % 2000, &occurred);
        }
        body.push_str("]}");
        t.build += clock.elapsed();

        let clock = Instant::now();
        let mut value: serde_json::Value = serde_json::from_str(&body)?;
        t.json += clock.elapsed();

        let clock = Instant::now();
        let items = match value.get_mut("events").map(serde_json::Value::take) {
            Some(serde_json::Value::Array(items)) => items,
            _ => anyhow::bail!("the generated batch has no events array"),
        };
        let now = Utc::now();
        let events: Vec<Event> = items
            .into_iter()
            .enumerate()
            .map(|(i, v)| crate::ingest::canonical::parse_event(v, "api", now, &format!("events[{i}]")))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow::anyhow!("a generated event is invalid: {e:?}"))?;
        t.parse += clock.elapsed();

        let clock = Instant::now();
        for e in &events {
            std::hint::black_box(e.content_hash());
        }
        t.hash += clock.elapsed();

        let clock = Instant::now();
        for e in &events {
            std::hint::black_box(serde_json::to_string(e)?);
        }
        t.serialise += clock.elapsed();

        let again = events.clone();
        let clock = Instant::now();
        let results = store.ingest(events, planner.clone()).await.context("ingest failed")?;
        t.store += clock.elapsed();

        // The same batch again: every event is a duplicate (hash and look-up, nothing written).
        let clock = Instant::now();
        store.ingest(again, planner.clone()).await.context("ingest failed")?;
        t.duplicates += clock.elapsed();

        let clock = Instant::now();
        std::hint::black_box(serde_json::to_vec(&results)?);
        t.answer += clock.elapsed();
    }

    let per_event = |d: Duration| d.as_secs_f64() * 1e6 / (batches * BATCH) as f64;
    report.line(format!(
        "    {batches} batches of {BATCH} events, one thread, library calls (no HTTP), synchronous = {synchronous}"
    ));
    report.line("    phase                                             µs per event".to_owned());
    let rows = [
        ("client: write the batch's JSON", t.build, false),
        ("server: parse the body into JSON values", t.json, true),
        ("server: parse_event (shape, time, PII hashing)", t.parse, true),
        ("  of the store: Event::content_hash (dedupe key)", t.hash, false),
        ("  of the store: serialise the event body", t.serialise, false),
        ("server: Store::ingest (one writer thread, commit)", t.store, true),
        ("server: serialise the answer (approx.)", t.answer, true),
        ("  (Store::ingest of the same batch again: duplicates)", t.duplicates, false),
    ];
    let mut server = Duration::ZERO;
    for (name, d, counts) in rows {
        if counts {
            server += d;
        }
        report.line(format!("    {name:<50} {:>8.2}", per_event(d)));
    }
    report.line(format!(
        "    server total                                        {:>8.2}  => at most {:.0} events/s on one core",
        per_event(server),
        1e6 / per_event(server)
    ));
    report.line(format!(
        "    of which the single writer thread (Store::ingest)   {:>8.2}  => at most {:.0} events/s whatever the cores",
        per_event(t.store),
        1e6 / per_event(t.store)
    ));

    // Single events, many callers at once: what group commit makes of one job per event.
    let singles = batches * BATCH / 4;
    let now = Utc::now();
    let mut events = Vec::with_capacity(singles);
    for n in 0..singles {
        let mut json = String::with_capacity(600);
        write_event(&mut json, (10_000_000 + n) as u64, n as u64 % 2000, &occurred);
        let v = serde_json::from_str(&json)?;
        events.push(
            crate::ingest::canonical::parse_event(v, "api", now, "")
                .map_err(|e| anyhow::anyhow!("a generated event is invalid: {e:?}"))?,
        );
    }
    let store: std::sync::Arc<dyn Store> = store;
    let clock = Instant::now();
    let mut calls = futures::stream::iter(events.into_iter().map(|e| {
        let (store, planner) = (store.clone(), planner.clone());
        async move { store.ingest(vec![e], planner).await }
    }))
    .buffer_unordered(64);
    while let Some(r) = futures::StreamExt::next(&mut calls).await {
        r.context("ingest failed")?;
    }
    let took = clock.elapsed();
    report.line(format!(
        "    Store::ingest of one event per call, 64 calls at once {:>8.2}  => {:.0} events/s through group commit",
        took.as_secs_f64() * 1e6 / singles as f64,
        singles as f64 / took.as_secs_f64()
    ));
    Ok(())
}

/// Times the writer-thread work of delivering `events` events to GA4, without the HTTP send:
/// routed ingest, claim, batching (payload building), mark-sending and recording the outcomes —
/// the same calls, in the same order, as a worker makes.
pub async fn delivery(events: usize, claim_batch: usize, synchronous: &str, report: &Report) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("surety-bench-").tempdir()?;
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s")?;
    let q = |s: String| toml::Value::String(s).to_string();
    let toml = format!(
        "[storage]\nurl = {}\nsqlite_synchronous = \"{synchronous}\"\n\n[[destinations]]\nname = \"ga4\"\ntype = \"ga4\"\n\
         measurement_id = \"G-BENCH01\"\napi_secret = {}\nbase_url = \"http://127.0.0.1:9\"\n\n\
         [catalog.order_paid]\nga4 = {{ event = \"purchase\" }}\n",
        q(format!("sqlite://{}", dir.path().join("ledger.db").display())),
        q(format!("file:{}", secret.display())),
    );
    let config = Config::from_toml(&toml)?;
    let store: std::sync::Arc<dyn Store> = crate::open_store(&config)?;
    let destinations = crate::delivery::build(&config.destinations)?;
    let dest = destinations.first().context("no destination")?.clone();
    let planner = std::sync::Arc::new(crate::planner(&config, &destinations));
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
        store.ingest(batch, planner.clone()).await?;
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
                store.mark_sending(&ids, Utc::now()).await?;
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
                    store.mark_sending(&ids, Utc::now()).await?;
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
        ("Store::ingest, routed (writer thread)", per(t.ingest)),
        ("  of which Planner::plan (GA4 rules and validation)", per(t.plan)),
        ("Store::claim (writer thread; reads the event bodies)", per(t.claim)),
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
        "    writer thread, ingest to delivered (16 in flight) {writer:>8.2}  => at most {:.0} events/s end to end",
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
fn recording(destination: &str, batch: &[crate::core::Claimed]) -> Recording {
    let updates = batch
        .iter()
        .map(|c| {
            let part = crate::delivery::ga4::Prepared::new(&c.event, &c.route, c.strip_personal);
            DeliveryUpdate {
                delivery_id: c.delivery_id,
                state: DeliveryState::Delivered,
                reason: Some("sent".into()),
                messages: vec![],
                next_attempt_at: None,
                attempted: true,
                outcome: "delivered",
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
    };
    Recording { destination: destination.to_owned(), requests: vec![request], updates, ..Recording::default() }
}

#[derive(Default)]
struct Phases {
    build: Duration,
    json: Duration,
    parse: Duration,
    hash: Duration,
    serialise: Duration,
    store: Duration,
    answer: Duration,
    duplicates: Duration,
}
