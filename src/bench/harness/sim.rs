//! The simulators as the benchmark runs them: each behind a layer that notes when each event
//! reached it (`Arrivals`, found in the body by a `Marker`), so latency is known per event and an
//! event taken twice shows.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;

use crate::platforms::{toml_string, Entry, Purpose, SimOptions, Simulator};
use crate::sim::Marker;

/// A platform's simulator (`platforms::Entry::simulate`, counting only) behind a layer that
/// notes when each event (by the benchmark's event number, which every payload carries) reached
/// it and was taken, so ingest→platform latency is known per event, and an event taken twice shows.
pub struct Sim {
    pub platform: &'static Entry,
    /// The name of the destination pointed at it: `<type>-bench`.
    pub destination: String,
    pub sim: Box<dyn Simulator>,
    pub arrivals: Arc<Arrivals>,
}

impl Sim {
    /// Starts `platform`'s simulator on 127.0.0.1:0 behind the arrival-noting layer.
    pub async fn start(platform: &'static Entry, events: usize, epoch: Instant) -> anyhow::Result<Self> {
        let arrivals = Arc::new(Arrivals::new(events, epoch, platform.showcase.marker));
        let layer = arrivals.clone();
        let wrap =
            move |router: Router| router.layer(axum::middleware::from_fn_with_state(layer.clone(), note_arrival));
        let options = SimOptions { counting_only: true, wrap: Some(Arc::new(wrap)) };
        let sim = (platform.simulate)(options)
            .await
            .with_context(|| format!("cannot start the {} simulator", platform.label))?;
        let destination = format!("{}-bench", platform.type_name.replace('_', "-"));
        Ok(Self { platform, destination, sim, arrivals })
    }

    /// Its destination's section (secrets written under `dir`) with `concurrency`, and the
    /// catalog route of `order_paid` to it, as TOML.
    pub fn destination_toml(&self, dir: &Path, concurrency: usize) -> anyhow::Result<String> {
        let section = self
            .sim
            .destination_toml(&self.destination, dir, Purpose::Load)
            .with_context(|| format!("cannot write the {} destination's secrets", self.platform.label))?;
        let route = self
            .platform
            .showcase
            .route("order_paid")
            .with_context(|| format!("{} has no route for order_paid", self.platform.label))?;
        Ok(format!(
            "\n{section}concurrency = {concurrency}\n\n[catalog.order_paid.{}]\nevent = {}\n",
            self.destination,
            toml_string(route.event)
        ))
    }

    pub async fn stop(self) {
        self.sim.shutdown().await;
    }
}

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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use super::*;

    const MARKER: Marker = Marker { path: "/mp/collect", key: "\"transaction_id\":\"" };

    #[test]
    fn notes_each_event_number() {
        let a = Arrivals::new(3, Instant::now(), MARKER);
        a.note(br#"{"events":[{"params":{"transaction_id":"0"}},{"params":{"transaction_id":"2"}}]}"#, 5);
        a.note(br#"{"events":[{"params":{"transaction_id":"2"}},{"params":{"transaction_id":"9"}}]}"#, 6);
        assert_eq!((a.get(0), a.get(1), a.get(2)), (Some(5), None, Some(6)));
        assert_eq!(a.repeats.load(Ordering::Relaxed), 1);
        assert_eq!(a.unknown.load(Ordering::Relaxed), 1);
        assert_eq!((a.arrived(), a.last()), (2, Some(6)));
        assert!(MARKER.matches("/mp/collect") && !MARKER.matches("/debug/mp/collect"));
    }
}
