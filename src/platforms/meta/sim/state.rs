//! What the simulated Conversions API keeps: requests, events, Meta's dedupe view, counters,
//! and the ways it has been told to fail.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::error::GraphError;
use crate::sim::{Fault, Faults};

/// Which access tokens the simulated pixel takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) enum TokenMode {
    /// Any non-empty token (the default).
    #[default]
    AnyNonEmpty,
    /// Only this one; any other is invalid.
    Only(String),
    /// Every token has expired.
    Expired,
}

/// One request as the simulator got it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub version: String,
    pub pixel_id: String,
    pub access_token: Option<String>,
    /// The body, if it was JSON.
    pub body: Option<Arc<Value>>,
    pub body_len: usize,
    pub received_at: DateTime<Utc>,
    /// What the simulator answered.
    pub status: u16,
    /// The Graph error code answered, if any.
    pub error_code: Option<i64>,
}

/// One event of an accepted request.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedEvent {
    pub pixel_id: String,
    pub event_name: String,
    pub event_time: i64,
    pub event_id: Option<String>,
    pub action_source: Option<String>,
    pub user_data: Map<String, Value>,
    pub custom_data: Option<Value>,
    /// The whole event object as sent.
    pub raw: Value,
    pub test_event_code: Option<String>,
    pub received_at: DateTime<Utc>,
    /// Meta already had an event with this `event_id` and `event_name` (from the pixel or an
    /// earlier server send) and keeps only one.
    pub duplicate: bool,
}

/// The simulator's shared state: what it received, its counters, its faults. Cheap to clone.
#[derive(Clone, Default)]
pub struct MetaSimState {
    pub(super) inner: Arc<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub(super) requests: Mutex<Vec<ReceivedRequest>>,
    pub(super) events: Mutex<Vec<ReceivedEvent>>,
    /// (event_id, event_name) seen so far, browser and server: Meta's dedupe keys.
    pub(super) seen: Mutex<HashSet<(String, String)>>,
    pub(super) browser_events: AtomicU64,
    pub(super) deduplicated: AtomicU64,
    pub(super) not_recording: AtomicBool,
    pub(super) accepted_requests: AtomicU64,
    pub(super) rejected_requests: AtomicU64,
    pub(super) event_count: AtomicU64,
    pub(super) faulted: AtomicU64,
    pub(super) traces: AtomicU64,
    pub(super) faults: Faults,
    pub(super) errors: Mutex<Option<(u32, GraphError)>>,
    pub(super) token: Mutex<TokenMode>,
    /// event_id → why Meta refuses it (stand-in for refusals no documented rule predicts).
    pub(super) refused: Mutex<BTreeMap<String, String>>,
    /// Events of accepted requests that carried a `test_event_code`: shown in Test Events only.
    pub(super) test_events: AtomicU64,
    /// The pixels this token may post to (`None`: any).
    pub(super) pixels: Mutex<Option<HashSet<String>>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data: a panic elsewhere cannot leave it half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MetaSimState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` requests meet `fault` (no Graph error body: a proxy's or a load balancer's answer).
    pub fn fail_next(&self, n: u32, fault: Fault) {
        self.inner.faults.fail_next(n, fault);
    }

    /// Every request meets `fault` until it is set to `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.inner.faults.set(fault);
    }

    /// The next `n` requests are answered with Meta's error for `code` (status chosen as Meta
    /// does: 1 → 500, 2 → 503, 190 → 401, 10 and 200–299 → 403, else 400) and not processed.
    pub fn fail_next_with_error(&self, n: u32, code: i64, subcode: Option<i64>, is_transient: bool) {
        let transient = is_transient.then_some(true);
        self.fail_next_with(n, GraphError::for_code(code, subcode, transient));
    }

    /// The next `n` requests are answered with `error` and not processed.
    pub fn fail_next_with(&self, n: u32, error: GraphError) {
        *lock(&self.inner.errors) = (n > 0).then_some((n, error));
    }

    /// From now on only `token` is valid (a rotation: the old one answers 190).
    pub fn rotate_token(&self, token: &str) {
        *lock(&self.inner.token) = TokenMode::Only(token.to_owned());
    }

    /// Every token has expired: requests answer 190 (subcode 463) until a rotation or [`Self::accept_any_token`].
    pub fn expire_token(&self) {
        *lock(&self.inner.token) = TokenMode::Expired;
    }

    /// Any non-empty token is valid again (the default).
    pub fn accept_any_token(&self) {
        *lock(&self.inner.token) = TokenMode::AnyNonEmpty;
    }

    /// Meta refuses any request holding an event with this `event_id`, as it would an invalid
    /// event: 400, code 100, naming the event's index.
    pub fn refuse_event_id(&self, event_id: &str, why: &str) {
        lock(&self.inner.refused).insert(event_id.to_owned(), why.to_owned());
    }

    /// The pixel sent this event from the browser: a server event with the same `event_id` and
    /// `event_name` is then a duplicate.
    pub fn record_browser_event(&self, event_id: &str, event_name: &str) {
        self.inner.browser_events.fetch_add(1, Ordering::Relaxed);
        if !lock(&self.inner.seen).insert((event_id.to_owned(), event_name.to_owned())) {
            self.inner.deduplicated.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Only these pixel ids exist (for this token): a request to another is answered as Meta
    /// answers an unknown object, code 100 subcode 33.
    pub fn only_pixels(&self, pixels: &[&str]) {
        *lock(&self.inner.pixels) = Some(pixels.iter().map(|p| (*p).to_owned()).collect());
    }

    /// Events received with a `test_event_code`: they go to Events Manager's Test Events tool
    /// and are not counted in [`Self::event_count`] (docs/platforms.md §Meta).
    pub fn test_event_count(&self) -> u64 {
        self.inner.test_events.load(Ordering::Relaxed)
    }

    /// Keep requests and events (the default), or only count them.
    pub fn set_recording(&self, on: bool) {
        self.inner.not_recording.store(!on, Ordering::Relaxed);
    }

    /// Requests answered 200 (faulted and refused ones excluded).
    pub fn request_count(&self) -> u64 {
        self.inner.accepted_requests.load(Ordering::Relaxed)
    }

    /// Requests refused with a Graph error by the simulator's own checks (token, limits, events).
    pub fn rejected_request_count(&self) -> u64 {
        self.inner.rejected_requests.load(Ordering::Relaxed)
    }

    /// Events of accepted requests (duplicates included; test events not), without copying them.
    pub fn event_count(&self) -> u64 {
        self.inner.event_count.load(Ordering::Relaxed)
    }

    /// Requests answered with an injected fault or error.
    pub fn fault_count(&self) -> u64 {
        self.inner.faulted.load(Ordering::Relaxed)
    }

    /// Events Meta drops as duplicates of an earlier one with the same `event_id` and
    /// `event_name` (browser or server).
    pub fn deduplicated_count(&self) -> u64 {
        self.inner.deduplicated.load(Ordering::Relaxed)
    }

    /// Every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// Every event of the accepted requests, duplicates included, in arrival order.
    pub fn received_events(&self) -> Vec<ReceivedEvent> {
        lock(&self.inner.events).clone()
    }

    pub fn events_named(&self, name: &str) -> Vec<ReceivedEvent> {
        lock(&self.inner.events).iter().filter(|e| e.event_name == name).cloned().collect()
    }

    /// The server events Meta keeps: received ones that duplicate nothing earlier (test events
    /// are not kept).
    pub fn unique_events(&self) -> Vec<ReceivedEvent> {
        lock(&self.inner.events).iter().filter(|e| !e.duplicate && e.test_event_code.is_none()).cloned().collect()
    }

    /// Forgets requests, events, dedupe keys and counters (faults, tokens and refusals stay).
    pub fn clear(&self) {
        lock(&self.inner.requests).clear();
        lock(&self.inner.events).clear();
        lock(&self.inner.seen).clear();
        let counters = [
            &self.inner.browser_events,
            &self.inner.deduplicated,
            &self.inner.accepted_requests,
            &self.inner.rejected_requests,
            &self.inner.event_count,
            &self.inner.test_events,
            &self.inner.faulted,
        ];
        for c in counters {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub(super) fn take_error(&self) -> Option<GraphError> {
        let mut errors = lock(&self.inner.errors);
        let (n, error) = errors.take()?;
        if n > 1 {
            *errors = Some((n - 1, error.clone()));
        }
        Some(error)
    }

    pub(super) fn trace_id(&self) -> String {
        format!("SimTrace{:08x}", self.inner.traces.fetch_add(1, Ordering::Relaxed))
    }

    pub(super) fn record(&self, request: ReceivedRequest) {
        if !self.inner.not_recording.load(Ordering::Relaxed) {
            lock(&self.inner.requests).push(request);
        }
    }
}
