//! A Meta Conversions API stand-in: `POST /{version}/{pixel_id}/events?access_token=…` checks
//! the token, the batch limit and every event by Meta's documented rules, rejects the whole
//! request with a Graph API error (code 100) naming the first bad event and field when any
//! event is invalid, and otherwise answers `{"events_received", "messages", "fbtrace_id"}`.
//! It keeps what it received and the dedupe view Meta applies (`event_id` + `event_name`,
//! browser and server alike), and can be told to fail: generic faults, Graph API errors by code,
//! a rotated or expired token, events it refuses.
//!
//! Source of the behaviour: developers.facebook.com/docs/marketing-api/conversions-api
//! (using-the-api, parameters, deduplicate-pixel-and-server-events), docs/graph-api/guides/
//! error-handling; PLATFORMS.md §Meta.

mod validate;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use validate::{check_event, Problem, FUTURE_SLACK_SECS, MAX_EVENTS, WINDOW_SECS};

use super::{Fault, Faults};

/// A Graph API error to answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphError {
    pub status: u16,
    pub code: i64,
    pub subcode: Option<i64>,
    pub is_transient: Option<bool>,
    pub kind: String,
    pub message: String,
    pub user_msg: Option<String>,
}

impl GraphError {
    /// The error Meta answers for `code`, with the HTTP status it comes with.
    pub fn for_code(code: i64, subcode: Option<i64>, is_transient: Option<bool>) -> Self {
        let (status, kind, message) = match code {
            1 => (500, "OAuthException", "An unknown error occurred"),
            2 => (503, "OAuthException", "An unexpected error has occurred. Please retry your request later."),
            4 => (400, "OAuthException", "(#4) Application request limit reached"),
            17 => (400, "OAuthException", "(#17) User request limit reached"),
            613 => (400, "OAuthException", "(#613) Calls within one hour have exceeded the rate limit"),
            190 => (401, "OAuthException", "Error validating access token"),
            10 => (403, "OAuthException", "(#10) Application does not have permission for this action"),
            200..=299 => (403, "OAuthException", "(#200) Permissions error"),
            368 => (400, "OAuthException", "(#368) The action attempted has been deemed abusive or is otherwise disallowed"),
            _ => (400, "OAuthException", "(#100) Invalid parameter"),
        };
        Self { status, code, subcode, is_transient, kind: kind.into(), message: message.into(), user_msg: None }
    }

    fn body(&self, fbtrace_id: &str) -> Value {
        let mut e = Map::new();
        e.insert("message".into(), self.message.as_str().into());
        e.insert("type".into(), self.kind.as_str().into());
        e.insert("code".into(), self.code.into());
        if let Some(sub) = self.subcode {
            e.insert("error_subcode".into(), sub.into());
        }
        if let Some(t) = self.is_transient {
            e.insert("is_transient".into(), t.into());
        }
        if let Some(msg) = &self.user_msg {
            e.insert("error_user_title".into(), "Invalid event".into());
            e.insert("error_user_msg".into(), msg.as_str().into());
        }
        e.insert("fbtrace_id".into(), fbtrace_id.into());
        json!({ "error": e })
    }

    fn response(&self, fbtrace_id: &str) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (status, axum::Json(self.body(fbtrace_id))).into_response();
        if self.code == 190 {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_token\""));
        }
        response
    }
}

/// Which access tokens the simulated pixel takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
enum TokenMode {
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
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<ReceivedRequest>>,
    events: Mutex<Vec<ReceivedEvent>>,
    /// (event_id, event_name) seen so far, browser and server: Meta's dedupe keys.
    seen: Mutex<HashSet<(String, String)>>,
    browser_events: AtomicU64,
    deduplicated: AtomicU64,
    not_recording: AtomicBool,
    accepted_requests: AtomicU64,
    rejected_requests: AtomicU64,
    event_count: AtomicU64,
    faulted: AtomicU64,
    traces: AtomicU64,
    faults: Faults,
    errors: Mutex<Option<(u32, GraphError)>>,
    token: Mutex<TokenMode>,
    /// event_id → why Meta refuses it (stand-in for refusals no documented rule predicts).
    refused: Mutex<BTreeMap<String, String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

    /// Events of accepted requests (duplicates included), without copying them.
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

    /// The server events Meta keeps: received ones that duplicate nothing earlier.
    pub fn unique_events(&self) -> Vec<ReceivedEvent> {
        lock(&self.inner.events).iter().filter(|e| !e.duplicate).cloned().collect()
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
            &self.inner.faulted,
        ];
        for c in counters {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn take_error(&self) -> Option<GraphError> {
        let mut errors = lock(&self.inner.errors);
        let (n, error) = errors.take()?;
        if n > 1 {
            *errors = Some((n - 1, error.clone()));
        }
        Some(error)
    }

    fn trace_id(&self) -> String {
        format!("SimTrace{:08x}", self.inner.traces.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, request: ReceivedRequest) {
        if !self.inner.not_recording.load(Ordering::Relaxed) {
            lock(&self.inner.requests).push(request);
        }
    }
}

/// The simulator's routes, to serve on their own ([`start`]) or mount elsewhere.
pub fn router(state: MetaSimState) -> Router {
    Router::new()
        .route("/{version}/{pixel_id}/events", post(events))
        // 1,000 events of a few kB each, with room to see an oversized batch and answer it.
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

async fn events(
    State(state): State<MetaSimState>,
    Path((version, pixel_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let fault = state.inner.faults.take();
    match fault {
        Some(Fault::Status(code)) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (status, "injected fault").into_response();
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let headers = [(header::RETRY_AFTER, retry_after_secs.to_string())];
            return (StatusCode::TOO_MANY_REQUESTS, headers, "rate limited (injected fault)").into_response();
        }
        Some(Fault::Delay(_)) | None => {}
    }
    if let Some(error) = state.take_error() {
        state.inner.faulted.fetch_add(1, Ordering::Relaxed);
        return error.response(&state.trace_id());
    }
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()).into_owned().collect();
    let response = process(&state, version, pixel_id, &query, &body);
    if let Some(Fault::Delay(delay)) = fault {
        // Processed already: only the answer is late.
        tokio::time::sleep(delay).await;
    }
    response
}

fn process(state: &MetaSimState, version: String, pixel_id: String, query: &[(String, String)], body: &[u8]) -> Response {
    let now = Utc::now();
    let trace = state.trace_id();
    let token = query.iter().find(|(k, _)| k == "access_token").map(|(_, v)| v.clone());
    let parsed = serde_json::from_slice::<Value>(body).ok();
    let mut request = ReceivedRequest {
        version,
        pixel_id: pixel_id.clone(),
        access_token: token.clone(),
        body: None,
        body_len: body.len(),
        received_at: now,
        status: 200,
        error_code: None,
    };
    let verdict = check_request(state, token.as_deref(), parsed.as_ref(), now);
    let response = match verdict {
        Err(error) => {
            state.inner.rejected_requests.fetch_add(1, Ordering::Relaxed);
            request.status = error.status;
            request.error_code = Some(error.code);
            error.response(&trace)
        }
        Ok(data) => {
            state.inner.accepted_requests.fetch_add(1, Ordering::Relaxed);
            let test_event_code = parsed.as_ref().and_then(|b| b.get("test_event_code")).and_then(Value::as_str);
            let n = data.len();
            accept(state, &pixel_id, data, test_event_code, now);
            axum::Json(json!({ "events_received": n, "messages": [], "fbtrace_id": trace })).into_response()
        }
    };
    request.body = parsed.map(Arc::new);
    state.record(request);
    response
}

/// The request's events if Meta takes it, else the error it answers.
fn check_request<'a>(
    state: &MetaSimState,
    token: Option<&str>,
    body: Option<&'a Value>,
    now: DateTime<Utc>,
) -> Result<&'a Vec<Value>, GraphError> {
    let token = token.filter(|t| !t.is_empty());
    let Some(token) = token else {
        let mut e = GraphError::for_code(104, None, None);
        e.message = "An access token is required to request this resource.".into();
        return Err(e);
    };
    match &*lock(&state.inner.token) {
        TokenMode::AnyNonEmpty => {}
        TokenMode::Only(valid) if valid == token => {}
        TokenMode::Only(_) => {
            let mut e = GraphError::for_code(190, None, None);
            e.message = "Invalid OAuth access token - Cannot parse access token".into();
            return Err(e);
        }
        TokenMode::Expired => {
            let mut e = GraphError::for_code(190, Some(463), None);
            e.message = "Error validating access token: Session has expired.".into();
            return Err(e);
        }
    }
    let invalid = |msg: String| {
        let mut e = GraphError::for_code(100, None, None);
        e.message = "Invalid parameter".into();
        e.user_msg = Some(msg);
        e
    };
    let Some(data) = body.and_then(|b| b.get("data")).and_then(Value::as_array) else {
        return Err(invalid("data: the parameter data is required and must be an array of events.".into()));
    };
    if data.is_empty() {
        return Err(invalid("data: at least one event is required.".into()));
    }
    if data.len() > MAX_EVENTS {
        return Err(invalid(format!("data: at most {MAX_EVENTS} events per request (got {}).", data.len())));
    }
    if let Some(code) = body.and_then(|b| b.get("test_event_code")) {
        if !code.is_string() {
            return Err(invalid("test_event_code: must be a string.".into()));
        }
    }
    for (i, event) in data.iter().enumerate() {
        if let Some(p) = check_event(i, event, now).into_iter().next() {
            return Err(invalid(format!("{}: {}", p.field, p.message)));
        }
    }
    let refused = lock(&state.inner.refused);
    for (i, event) in data.iter().enumerate() {
        if let Some(why) = event.get("event_id").and_then(Value::as_str).and_then(|id| refused.get(id)) {
            return Err(invalid(format!("data[{i}]: {why}")));
        }
    }
    Ok(data)
}

fn accept(state: &MetaSimState, pixel_id: &str, data: &[Value], test_event_code: Option<&str>, now: DateTime<Utc>) {
    state.inner.event_count.fetch_add(data.len() as u64, Ordering::Relaxed);
    let recording = !state.inner.not_recording.load(Ordering::Relaxed);
    let mut seen = lock(&state.inner.seen);
    let mut events = lock(&state.inner.events);
    for e in data {
        let text = |key: &str| e.get(key).and_then(Value::as_str).map(str::to_owned);
        let event_name = text("event_name").unwrap_or_default();
        let event_id = text("event_id");
        // Without an event_id Meta has nothing to dedupe on.
        let duplicate = event_id.as_ref().is_some_and(|id| !seen.insert((id.clone(), event_name.clone())));
        if duplicate {
            state.inner.deduplicated.fetch_add(1, Ordering::Relaxed);
        }
        if recording {
            events.push(ReceivedEvent {
                pixel_id: pixel_id.to_owned(),
                event_name,
                event_time: e.get("event_time").and_then(Value::as_i64).unwrap_or_default(),
                event_id,
                action_source: text("action_source"),
                user_data: e.get("user_data").and_then(Value::as_object).cloned().unwrap_or_default(),
                custom_data: e.get("custom_data").cloned(),
                raw: e.clone(),
                test_event_code: test_event_code.map(str::to_owned),
                received_at: now,
                duplicate,
            });
        }
    }
}

/// A simulator serving on 127.0.0.1 in a background task. Dereferences to its state, so the
/// fault and inspection methods are at hand; clones share the server.
#[derive(Clone)]
pub struct MetaSim {
    /// `http://127.0.0.1:PORT`: the `base_url` to configure a Meta destination with.
    pub base_url: String,
    state: MetaSimState,
    stop: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// Binds 127.0.0.1 on a free port and serves the simulator until [`MetaSim::shutdown`].
pub async fn start() -> std::io::Result<MetaSim> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let state = MetaSimState::new();
    let stop = CancellationToken::new();
    let app = router(state.clone());
    let signal = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
            tracing::warn!(error = %e, "the Meta simulator stopped");
        }
    });
    Ok(MetaSim { base_url: format!("http://{addr}"), state, stop, task: Arc::new(Mutex::new(Some(task))) })
}

impl MetaSim {
    pub fn state(&self) -> &MetaSimState {
        &self.state
    }

    /// Stops serving: waits up to 5 s for requests in progress, then cuts them off.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = lock(&self.task).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Deref for MetaSim {
    type Target = MetaSimState;
    fn deref(&self) -> &MetaSimState {
        &self.state
    }
}
