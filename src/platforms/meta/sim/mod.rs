//! A Meta Conversions API stand-in: `POST /{version}/{pixel_id}/events?access_token=…` checks
//! the token, the batch limit and every event by Meta's documented rules, rejects the whole
//! request with a Graph API error (code 100) naming the first bad event and field when any
//! event is invalid, and otherwise answers `{"events_received", "messages", "fbtrace_id"}`.
//! It keeps what it received and the dedupe view Meta applies (`event_id` + `event_name`,
//! browser and server alike); events sent with a `test_event_code` go to the Test Events view
//! only (not counted, not deduplicated); a pixel it does not know is refused (code 100/33).
//! It can be told to fail: generic faults, Graph API errors by code,
//! a rotated or expired token, events it refuses.
//!
//! Source of the behaviour: developers.facebook.com/docs/marketing-api/conversions-api
//! (using-the-api, parameters, deduplicate-pixel-and-server-events), docs/graph-api/guides/
//! error-handling; docs/platforms.md §Meta.

mod error;
mod state;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub use self::error::GraphError;
use self::state::{lock, TokenMode};
pub use self::state::{MetaSimState, ReceivedEvent, ReceivedRequest};
pub use self::validate::{check_event, Problem, FUTURE_SLACK_SECS, MAX_EVENTS, WINDOW_SECS};
use crate::sim::Fault;

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

fn process(
    state: &MetaSimState,
    version: String,
    pixel_id: String,
    query: &[(String, String)],
    body: &[u8],
) -> Response {
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
    let verdict = check_request(state, token.as_deref(), parsed.as_ref(), now).and_then(|data| {
        let known = lock(&state.inner.pixels).as_ref().is_none_or(|p| p.contains(&pixel_id));
        if known {
            Ok(data)
        } else {
            let mut e = GraphError::for_code(100, Some(33), None);
            e.message = format!(
                "Unsupported post request. Object with ID '{pixel_id}' does not exist, cannot be loaded due to \
                 missing permissions, or does not support this operation."
            );
            Err(e)
        }
    });
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
    // Test events go to the Test Events tool: not counted, and no part of the dedupe view.
    let counter = if test_event_code.is_some() { &state.inner.test_events } else { &state.inner.event_count };
    counter.fetch_add(data.len() as u64, Ordering::Relaxed);
    let recording = !state.inner.not_recording.load(Ordering::Relaxed);
    let mut seen = lock(&state.inner.seen);
    let mut events = lock(&state.inner.events);
    for e in data {
        let text = |key: &str| e.get(key).and_then(Value::as_str).map(str::to_owned);
        let event_name = text("event_name").unwrap_or_default();
        let event_id = text("event_id");
        // Without an event_id Meta has nothing to dedupe on.
        let duplicate = test_event_code.is_none()
            && event_id.as_ref().is_some_and(|id| !seen.insert((id.clone(), event_name.clone())));
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

/// A Meta simulator serving on 127.0.0.1 (see [`crate::sim::Running`]).
pub type MetaSim = crate::sim::Running<MetaSimState>;

/// Binds 127.0.0.1 on a free port and serves the simulator until [`crate::sim::Running::shutdown`].
pub async fn start() -> std::io::Result<MetaSim> {
    let state = MetaSimState::new();
    crate::sim::serve(state.clone(), router(state), "Meta").await
}
