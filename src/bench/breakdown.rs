//! `surety bench --breakdown`: where a 1000-event batch's ingest time goes, phase by phase,
//! measured by calling the library directly (no HTTP) — to explain the rates the scenarios get.
//! Then the same calls several at once: the store's own ceiling, and the handler's.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt as _;

use super::load::{occurred_at, write_event, BATCH};
use super::Report;
use crate::config::Config;
use crate::core::Event;
use crate::store::{Intake, Store};

/// Times each phase of ingest for `batches` batches of [`BATCH`] events and prints µs per event.
pub async fn run(batches: usize, synchronous: &str, report: &Report) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("surety-bench-").tempdir()?;
    let toml = format!(
        "[storage]\nurl = {}\nsqlite_synchronous = \"{synchronous}\"\n",
        toml::Value::String(format!("sqlite://{}", dir.path().join("ledger.db").display()))
    );
    let config = Config::from_toml(&toml)?;
    let store = crate::store::open_sqlite(&config)?;
    let planner = std::sync::Arc::new(crate::delivery::planner(&config, &[]));
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
        let results =
            store.intake(Intake::of_events(now, events), planner.clone()).await.context("ingest failed")?.events;
        t.store += clock.elapsed();

        // The same batch again: every event is a duplicate (hash and look-up, nothing written).
        let clock = Instant::now();
        store.intake(Intake::of_events(now, again), planner.clone()).await.context("ingest failed")?;
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
        ("server: Store::intake, one call at a time", t.store, true),
        ("server: serialise the answer (approx.)", t.answer, true),
        ("  (Store::intake of the same batch again: duplicates)", t.duplicates, false),
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

    let store: std::sync::Arc<dyn Store> = store;
    let now = Utc::now();

    // Batches from four callers at once, as scenario a posts them: the store's own ceiling.
    let mut batches_4 = Vec::new();
    for b in 0..batches.max(4) {
        let mut batch = Vec::with_capacity(BATCH);
        for k in 0..BATCH {
            let n = (20_000_000 + b * BATCH + k) as u64;
            let mut json = String::with_capacity(600);
            write_event(&mut json, n, n % 2000, &occurred);
            batch.push(
                crate::ingest::canonical::parse_event(serde_json::from_str(&json)?, "api", now, "")
                    .map_err(|e| anyhow::anyhow!("a generated event is invalid: {e:?}"))?,
            );
        }
        batches_4.push(batch);
    }
    let count = batches_4.len() * BATCH;
    let clock = Instant::now();
    let mut calls = futures::stream::iter(batches_4.into_iter().map(|batch| {
        let (store, planner) = (store.clone(), planner.clone());
        async move { store.intake(Intake::of_events(now, batch), planner).await }
    }))
    .buffer_unordered(4);
    while let Some(r) = calls.next().await {
        r.context("ingest failed")?;
    }
    let took = clock.elapsed();
    report.line(format!(
        "    Store::intake of 1000-event batches, 4 calls at once {:>8.2}  => {:.0} events/s: the store's ceiling",
        took.as_secs_f64() * 1e6 / count as f64,
        count as f64 / took.as_secs_f64()
    ));

    // The handler's whole work — JSON, parse_event, Store::intake — for 4 batches at once on
    // the runtime's worker threads, as the API does it, minus HTTP.
    let rounds = batches.max(4);
    let clock = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..4usize {
        let (store, planner, occurred) = (store.clone(), planner.clone(), occurred.clone());
        tasks.spawn(async move {
            for b in (c..rounds).step_by(4) {
                let mut body = String::with_capacity(BATCH * 520);
                body.push_str("{\"events\":[");
                for k in 0..BATCH {
                    if k > 0 {
                        body.push(',');
                    }
                    let n = (30_000_000 + b * BATCH + k) as u64;
                    write_event(&mut body, n, n % 2000, &occurred);
                }
                body.push_str("]}");
                let mut value: serde_json::Value = serde_json::from_str(&body)?;
                let Some(serde_json::Value::Array(items)) = value.get_mut("events").map(serde_json::Value::take) else {
                    anyhow::bail!("the generated batch has no events array");
                };
                let now = Utc::now();
                let events = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| crate::ingest::canonical::parse_event(v, "api", now, &format!("events[{i}]")))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| anyhow::anyhow!("a generated event is invalid: {e:?}"))?;
                let results = store.intake(Intake::of_events(now, events), planner.clone()).await?.events;
                std::hint::black_box(serde_json::to_vec(&results)?);
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.context("a handler task panicked")??;
    }
    let took = clock.elapsed();
    report.line(format!(
        "    handler work (JSON, parse, Store::intake), 4 tasks {:>8.2}  => {:.0} events/s: the ceiling without HTTP",
        took.as_secs_f64() * 1e6 / (rounds * BATCH) as f64,
        (rounds * BATCH) as f64 / took.as_secs_f64()
    ));

    // Single events, many callers at once: what group commit makes of one job per event.
    let singles = batches * BATCH / 4;
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
    let clock = Instant::now();
    let mut calls = futures::stream::iter(events.into_iter().map(|e| {
        let (store, planner) = (store.clone(), planner.clone());
        async move { store.intake(Intake::of_events(now, vec![e]), planner).await }
    }))
    .buffer_unordered(64);
    while let Some(r) = calls.next().await {
        r.context("ingest failed")?;
    }
    let took = clock.elapsed();
    report.line(format!(
        "    Store::intake of one event per call, 64 calls at once {:>8.2}  => {:.0} events/s through group commit",
        took.as_secs_f64() * 1e6 / singles as f64,
        singles as f64 / took.as_secs_f64()
    ));
    Ok(())
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
