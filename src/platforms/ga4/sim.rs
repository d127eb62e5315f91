//! A GA4 Measurement Protocol stand-in: `POST /mp/collect` answers 204 to anything, as Google
//! does, and keeps what it got; `POST /debug/mp/collect` validates by GA4's documented rules,
//! implemented here on their own (not the adapter's) so that adapter bugs show.
//!
//! It also stands in for the Data API (`POST /token`, `POST /v1beta/properties/{id}:runReport`,
//! [`data_api`]): the report is built from the purchases `/mp/collect` actually took, so a
//! reconcile that reads GA4 back sees what was sent, less or more what a test injects.
//!
//! Source of the behaviour: developers.google.com/analytics/devguides/collection/protocol/ga4
//! (reference, sending-events, validating-events); docs/platforms.md §GA4.

pub mod data_api;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

pub use self::validate::{validate, Code, Message};
use crate::sim::{Fault, Faults};

/// GA4 refuses bodies of this many bytes or more.
pub const MAX_BODY_BYTES: usize = 130_000;

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Collect,
    Debug,
}

/// One request as the simulator got it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub endpoint: Endpoint,
    pub query: Vec<(String, String)>,
    /// The body, if it was JSON.
    pub body: Option<Arc<Value>>,
    pub body_len: usize,
    pub received_at: DateTime<Utc>,
    /// What the simulator answered.
    pub status: u16,
    /// Whether its events count as received (a `/mp/collect` request with credentials and a
    /// JSON object body; GA4 drops the rest without a word).
    pub reported: bool,
}

/// One event of a reported `/mp/collect` request, with its request-level fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedEvent {
    pub measurement_id: Option<String>,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub name: String,
    pub params: Map<String, Value>,
    /// The event's own `timestamp_micros`, else the request's.
    pub timestamp_micros: Option<i64>,
    pub consent: Option<Value>,
    pub user_data: Option<Value>,
    pub received_at: DateTime<Utc>,
}

/// The simulator's shared state: what it received, its counters and its faults. Cheap to clone.
#[derive(Clone, Default)]
pub struct Ga4SimState {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<ReceivedRequest>>,
    /// Off: keep only the counters (long benchmarks).
    not_recording: AtomicBool,
    collect_requests: AtomicU64,
    debug_requests: AtomicU64,
    events: AtomicU64,
    faulted: AtomicU64,
    faults: Faults,
    data_api: Mutex<data_api::DataApi>,
    run_reports: AtomicU64,
}

impl Ga4SimState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` requests (to either endpoint) meet `fault`.
    pub fn fail_next(&self, n: u32, fault: Fault) {
        self.inner.faults.fail_next(n, fault);
    }

    /// Every request meets `fault` until it is set to `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.inner.faults.set(fault);
    }

    /// Keep requests and their bodies (the default), or only count them.
    pub fn set_recording(&self, on: bool) {
        self.inner.not_recording.store(!on, Ordering::Relaxed);
    }

    /// `/mp/collect` requests answered 2xx (faulted ones excluded).
    pub fn request_count(&self) -> u64 {
        self.inner.collect_requests.load(Ordering::Relaxed)
    }

    /// `/debug/mp/collect` requests answered (faulted ones excluded).
    pub fn debug_request_count(&self) -> u64 {
        self.inner.debug_requests.load(Ordering::Relaxed)
    }

    /// Events of reported `/mp/collect` requests, without copying them.
    pub fn event_count(&self) -> u64 {
        self.inner.events.load(Ordering::Relaxed)
    }

    /// Requests answered with an injected fault.
    pub fn fault_count(&self) -> u64 {
        self.inner.faulted.load(Ordering::Relaxed)
    }

    /// Every recorded request, both endpoints, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.lock().clone()
    }

    /// Every event of the reported `/mp/collect` requests, in arrival order.
    pub fn received_events(&self) -> Vec<ReceivedEvent> {
        self.lock().iter().filter(|r| r.reported).flat_map(flatten).collect()
    }

    pub fn events_named(&self, name: &str) -> Vec<ReceivedEvent> {
        self.lock().iter().filter(|r| r.reported).flat_map(flatten).filter(|e| e.name == name).collect()
    }

    /// Forgets the recorded requests and resets the counters (faults stay).
    pub fn clear(&self) {
        self.lock().clear();
        for c in [&self.inner.collect_requests, &self.inner.debug_requests, &self.inner.events, &self.inner.faulted] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ReceivedRequest>> {
        // Appends only: a panic elsewhere cannot leave the list half-written.
        self.inner.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, request: ReceivedRequest) {
        if !self.inner.not_recording.load(Ordering::Relaxed) {
            self.lock().push(request);
        }
    }
}

fn flatten(r: &ReceivedRequest) -> Vec<ReceivedEvent> {
    let Some(body) = r.body.as_deref().and_then(Value::as_object) else {
        return Vec::new();
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let request_ts = body.get("timestamp_micros").and_then(Value::as_i64);
    let measurement_id = r.query.iter().find(|(k, _)| k == "measurement_id").map(|(_, v)| v.clone());
    let events = body.get("events").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    events
        .iter()
        .filter_map(Value::as_object)
        .map(|e| ReceivedEvent {
            measurement_id: measurement_id.clone(),
            client_id: text("client_id"),
            user_id: text("user_id"),
            name: e.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
            params: e.get("params").and_then(Value::as_object).cloned().unwrap_or_default(),
            timestamp_micros: e.get("timestamp_micros").and_then(Value::as_i64).or(request_ts),
            consent: body.get("consent").cloned(),
            user_data: body.get("user_data").cloned(),
            received_at: r.received_at,
        })
        .collect()
}

/// The simulator's routes, to serve on their own ([`start`]) or mount elsewhere.
pub fn router(state: Ga4SimState) -> Router {
    Router::new()
        .route("/mp/collect", post(collect))
        .route("/debug/mp/collect", post(debug))
        .route("/token", post(data_api::grant))
        .route("/v1beta/properties/{target}", post(data_api::run_report))
        // Large enough to see an oversized body and answer 413 the way GA4 does.
        .layer(DefaultBodyLimit::max(4 * MAX_BODY_BYTES))
        .with_state(state)
}

async fn collect(State(state): State<Ga4SimState>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    handle(state, Endpoint::Collect, query, body).await
}

async fn debug(State(state): State<Ga4SimState>, RawQuery(query): RawQuery, body: Bytes) -> Response {
    handle(state, Endpoint::Debug, query, body).await
}

async fn handle(state: Ga4SimState, endpoint: Endpoint, query: Option<String>, body: Bytes) -> Response {
    let fault = state.inner.faults.take();
    match fault {
        Some(Fault::Status(code)) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, axum::Json(json!({"error": {"code": code, "message": "injected fault"}}))).into_response();
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                axum::Json(json!({"error": {"code": 429, "message": "rate limited (injected fault)"}})),
            )
                .into_response();
        }
        Some(Fault::Delay(_)) | None => {}
    }
    let response = process(&state, endpoint, query.as_deref().unwrap_or(""), &body);
    if let Some(Fault::Delay(delay)) = fault {
        // Processed already: only the answer is late.
        tokio::time::sleep(delay).await;
    }
    response
}

fn process(state: &Ga4SimState, endpoint: Endpoint, raw_query: &str, body: &[u8]) -> Response {
    let now = Utc::now();
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes()).into_owned().collect();
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let mut request = ReceivedRequest {
        endpoint,
        query,
        body: None,
        body_len: body.len(),
        received_at: now,
        status: 0,
        reported: false,
    };
    let response = if body.len() >= MAX_BODY_BYTES {
        request.status = 413;
        (StatusCode::PAYLOAD_TOO_LARGE, "Request body must be less than 130 kB").into_response()
    } else {
        match endpoint {
            Endpoint::Collect => {
                state.inner.collect_requests.fetch_add(1, Ordering::Relaxed);
                let has = |key: &str| request.query.iter().any(|(k, v)| k == key && !v.trim().is_empty());
                let events = parsed.as_ref().and_then(Value::as_object).map(|body| {
                    body.get("events")
                        .and_then(Value::as_array)
                        .map_or(0, |e| e.iter().filter(|e| e.is_object()).count())
                });
                if let (Some(events), true) = (events, has("api_secret") && has("measurement_id")) {
                    request.reported = true;
                    state.inner.events.fetch_add(events as u64, Ordering::Relaxed);
                }
                request.status = 204;
                StatusCode::NO_CONTENT.into_response()
            }
            Endpoint::Debug => {
                state.inner.debug_requests.fetch_add(1, Ordering::Relaxed);
                let messages = validate(&request.query, body, now);
                request.status = 200;
                axum::Json(json!({ "validationMessages": messages })).into_response()
            }
        }
    };
    request.body = parsed.map(Arc::new);
    state.record(request);
    response
}

/// A GA4 simulator serving on 127.0.0.1 (see [`crate::sim::Running`]).
pub type Ga4Sim = crate::sim::Running<Ga4SimState>;

/// Binds 127.0.0.1 on a free port and serves the simulator until [`crate::sim::Running::shutdown`].
pub async fn start() -> std::io::Result<Ga4Sim> {
    let state = Ga4SimState::new();
    crate::sim::serve(state.clone(), router(state), "GA4").await
}
