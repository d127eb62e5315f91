//! The simulators as the benchmark runs them: each behind a layer that notes when each event
//! reached it (`Arrivals`, found in the body by a `Marker`), so latency is known per event and an
//! event taken twice shows.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::platforms::ga4::sim::{self as ga4, Ga4SimState};

/// A platform simulator behind a layer that notes when each event (by the benchmark's event
/// number, which every payload carries) reached it and was taken, so ingest→platform latency is
/// known per event, and an event taken twice shows.
pub struct Sim<S = Ga4SimState> {
    pub base_url: String,
    pub state: S,
    pub arrivals: Arc<Arrivals>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Where a platform's requests name the events they carry.
#[derive(Clone, Copy, Debug)]
pub struct Marker {
    /// How the path of a request carrying events ends (`/debug/…` paths excepted).
    pub path: &'static str,
    /// What precedes an event's number in such a request's body.
    pub key: &'static str,
}

impl Marker {
    fn matches(&self, path: &str) -> bool {
        path.ends_with(self.path) && !path.starts_with("/debug/")
    }
}

/// GA4: `params.transaction_id` is the order number.
pub const GA4_MARKER: Marker = Marker { path: "/mp/collect", key: "\"transaction_id\":\"" };

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

impl Sim<Ga4SimState> {
    /// Serves the GA4 simulator's routes on 127.0.0.1:0, counting only (no request bodies kept).
    pub async fn start(events: usize, epoch: Instant) -> anyhow::Result<Self> {
        let state = Ga4SimState::new();
        state.set_recording(false);
        Self::serve(ga4::router(state.clone()), state, Arrivals::new(events, epoch, GA4_MARKER)).await
    }
}

impl<S> Sim<S> {
    /// Serves a simulator's `router` on 127.0.0.1:0 behind the arrival-noting layer.
    pub async fn serve(router: Router, state: S, arrivals: Arrivals) -> anyhow::Result<Self> {
        let arrivals = Arc::new(arrivals);
        let app = router.layer(axum::middleware::from_fn_with_state(arrivals.clone(), note_arrival));
        let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot bind the simulator")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let stop = CancellationToken::new();
        let signal = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
                eprintln!("a simulator stopped: {e}");
            }
        });
        Ok(Self { base_url, state, arrivals, stop, task })
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    use super::*;

    #[test]
    fn notes_each_transaction_id() {
        let a = Arrivals::new(3, Instant::now(), GA4_MARKER);
        a.note(br#"{"events":[{"params":{"transaction_id":"0"}},{"params":{"transaction_id":"2"}}]}"#, 5);
        a.note(br#"{"events":[{"params":{"transaction_id":"2"}},{"params":{"transaction_id":"9"}}]}"#, 6);
        assert_eq!((a.get(0), a.get(1), a.get(2)), (Some(5), None, Some(6)));
        assert_eq!(a.repeats.load(Ordering::Relaxed), 1);
        assert_eq!(a.unknown.load(Ordering::Relaxed), 1);
        assert_eq!((a.arrived(), a.last()), (2, Some(6)));
        assert!(GA4_MARKER.matches("/mp/collect") && !GA4_MARKER.matches("/debug/mp/collect"));
    }
}
