//! `POST /v1/events` and `POST /v1/identities`: answered only after the commit (G1).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;
use serde_json::{json, Value};

use super::auth::Role;
use super::json_body;
use super::problem::Problem;
use crate::api::App;
use crate::core::{DeliveryState, Event};
use crate::ingest::canonical::{parse_capture, parse_event};
use crate::ingest::FieldError;
use crate::store::{IdentityCapture, IngestResult, IngestStatus, PlannedDelivery};
use crate::telemetry::EventLabels;

/// The answer for one item of a batch.
#[derive(Serialize)]
struct ItemResult {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<String>,
    status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deliveries: Vec<PlannedDelivery>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

pub async fn post_events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    app.auth.require(&headers, Role::Ingest)?;
    let value = json_body(&headers, body)?;
    let now = Utc::now();
    match value {
        Value::Object(mut map) if map.contains_key("events") => {
            let Some(Value::Array(items)) = map.remove("events") else {
                return Err(invalid_shape("events", "must be an array of events"));
            };
            if let Some(k) = map.keys().next() {
                return Err(invalid_shape(k, "unknown field; a batch is {\"events\": [...]}"));
            }
            batch(&app, items, now).await
        }
        value => single(&app, value, now).await,
    }
}

fn invalid_shape(field: &str, message: &str) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", "Invalid event", format!("{field}: {message}"))
        .with_errors(vec![FieldError::new(field, "invalid", message)])
}

async fn single(app: &App, value: Value, now: chrono::DateTime<Utc>) -> Result<Response, Problem> {
    let event = parse_event(value, "api", now, "").map_err(|errors| {
        app.metrics.events.get_or_create(&labels("api", "unknown", "invalid")).inc();
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", "Invalid event", summary(&errors))
            .with_errors(errors)
    })?;
    let result =
        commit(app, vec![event]).await?.pop().ok_or_else(|| Problem::storage(&crate::store::StoreError::Closed))?;
    match result.status {
        IngestStatus::Accepted => Ok((StatusCode::ACCEPTED, Json(result)).into_response()),
        IngestStatus::Duplicate => Ok((StatusCode::OK, Json(result)).into_response()),
        IngestStatus::Conflict => Err(Problem::new(
            StatusCode::CONFLICT,
            "event_conflict",
            "Conflicting event",
            format!(
                "event {} already exists with different content; the original stands and this attempt was recorded. \
                 A changed business fact is a new event (for example a restatement), not an overwrite",
                result.event_id
            ),
        )),
    }
}

async fn batch(app: &App, items: Vec<Value>, now: chrono::DateTime<Utc>) -> Result<Response, Problem> {
    let max = app.config.server.max_batch_events;
    if items.len() > max {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_events",
            "Too many events",
            format!("a batch holds at most {max} events; this one has {}", items.len()),
        ));
    }
    let mut results: Vec<Option<ItemResult>> = Vec::with_capacity(items.len());
    let mut valid: Vec<Event> = Vec::new();
    let mut slots = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let given_id = item.get("event_id").and_then(Value::as_str).map(str::to_owned);
        match parse_event(item, "api", now, &format!("events[{index}]")) {
            Ok(event) => {
                slots.push(index);
                valid.push(event);
                results.push(None);
            }
            Err(errors) => {
                app.metrics.events.get_or_create(&labels("api", "unknown", "invalid")).inc();
                results.push(Some(ItemResult {
                    index,
                    event_id: given_id,
                    status: "invalid",
                    deliveries: vec![],
                    errors,
                }));
            }
        }
    }
    let accepted_any = !valid.is_empty();
    if accepted_any {
        for (slot, r) in slots.into_iter().zip(commit(app, valid).await?) {
            let status = match r.status {
                IngestStatus::Accepted => "accepted",
                IngestStatus::Duplicate => "duplicate",
                IngestStatus::Conflict => "conflict",
            };
            let errors = if r.status == IngestStatus::Conflict {
                vec![FieldError::new(
                    format!("events[{slot}]"),
                    "conflict",
                    "an event with this id and different content exists; the original stands",
                )]
            } else {
                vec![]
            };
            results[slot] =
                Some(ItemResult { index: slot, event_id: Some(r.event_id), status, deliveries: r.deliveries, errors });
        }
    }
    let results: Vec<ItemResult> = results.into_iter().flatten().collect();
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let body = json!({
        "accepted": count("accepted"),
        "duplicate": count("duplicate"),
        "conflict": count("conflict"),
        "invalid": count("invalid"),
        "results": results,
    });
    if !accepted_any {
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
            "Invalid events",
            "no event of the batch is valid; nothing was stored",
        );
        p.results = body.get("results").cloned();
        return Err(p);
    }
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// Adds an identity capture to the bridge; deliveries it re-planned (they were awaiting this
/// identity) are counted if ended, and wake the workers if due.
pub(super) async fn capture(app: &App, capture: IdentityCapture) -> Result<(), Problem> {
    let replanned = app.store.capture_identity(capture, app.planner.clone()).await.map_err(|e| Problem::storage(&e))?;
    for d in replanned.iter().filter(|d| d.state.is_ended()) {
        app.metrics.delivery(&d.destination, d.state.as_str(), d.reason);
    }
    if replanned.iter().any(|d| d.state == DeliveryState::Pending) {
        app.wake_workers();
    }
    Ok(())
}

/// Commits, counts, and wakes the workers if anything became due.
pub(super) async fn commit(app: &App, events: Vec<Event>) -> Result<Vec<IngestResult>, Problem> {
    let kinds: Vec<(String, String)> = events.iter().map(|e| (e.source.clone(), e.kind.to_string())).collect();
    let results = app.store.ingest(events, app.planner.clone()).await.map_err(|e| Problem::storage(&e))?;
    let mut due = false;
    for ((source, kind), r) in kinds.iter().zip(&results) {
        let status = match r.status {
            IngestStatus::Accepted if r.deliveries.is_empty() => "not_routed",
            IngestStatus::Accepted => "accepted",
            IngestStatus::Duplicate => "duplicate",
            IngestStatus::Conflict => "conflict",
        };
        app.metrics.events.get_or_create(&labels(source, kind, status)).inc();
        for d in &r.deliveries {
            due |= d.state == DeliveryState::Pending;
            app.metrics.delivery(&d.destination, d.state.as_str(), d.reason);
        }
    }
    if due {
        app.wake_workers();
    }
    Ok(results)
}

fn labels(source: &str, kind: &str, status: &str) -> EventLabels {
    EventLabels { source: source.to_owned(), kind: kind.to_owned(), status: status.to_owned() }
}

pub(super) fn summary(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

pub async fn post_identity(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let from_browser = super::capture::admit(&app, &headers, peer.map(|Extension(ConnectInfo(a))| a))?;
    let value = json_body(&headers, body)?;
    let mut capture = parse_capture(value, Utc::now()).map_err(|errors| {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_identity", "Invalid identity capture", summary(&errors))
            .with_errors(errors)
    })?;
    capture.from_browser = from_browser;
    let subject = capture.subject.clone();
    self::capture(&app, capture).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"subject": subject, "status": "captured"}))).into_response())
}
