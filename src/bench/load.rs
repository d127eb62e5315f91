//! The load side of the benchmark: realistic generated events, and clients that post them in
//! batches and record each request's latency.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use chrono::{SecondsFormat, Utc};
use hdrhistogram::Histogram;
use serde::Deserialize;

use super::harness;

/// Events per `{"events": [...]}` request (the API's maximum).
pub(super) const BATCH: usize = 1000;
/// Distinct GA4 client ids the events are spread over.
pub(super) const CLIENT_IDS: u64 = 2000;
/// How many client ids are "active" at once in the generated stream (see [`client_of`]).
const ACTIVE_CLIENTS: u64 = 50;

pub(super) struct IngestRun {
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
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
pub(super) async fn ingest_batches(
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
pub(super) async fn merge(
    tasks: &mut tokio::task::JoinSet<anyhow::Result<Histogram<u64>>>,
) -> anyhow::Result<Histogram<u64>> {
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
pub(super) fn splitmix(x: u64) -> u64 {
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
