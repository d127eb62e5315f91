//! `POST /v1/events` and `POST /v1/identities`: answered only after the commit (G1). The use
//! cases are `ingest::intake::{events, identity}`; these handlers translate HTTP to and from them.

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
use crate::ingest::intake::{self, summary, Identity, Item};
use crate::ingest::FieldError;
use crate::store::{IngestStatus, PlannedDelivery, StoreError};

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
    let answer = intake::events(app.ledger(), vec![value], false, now).await?;
    if answer.due {
        app.wake_workers();
    }
    let result = match answer.items.into_iter().next().ok_or(StoreError::Closed)? {
        Item::Invalid { errors, .. } => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_event",
                "Invalid event",
                summary(&errors),
            )
            .with_errors(errors))
        }
        Item::Stored(result) => result,
    };
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
    let answer = intake::events(app.ledger(), items, true, now).await?;
    if answer.due {
        app.wake_workers();
    }
    let accepted_any = answer.items.iter().any(|i| matches!(i, Item::Stored(_)));
    let results: Vec<ItemResult> = answer
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Item::Invalid { event_id, errors } => {
                ItemResult { index, event_id, status: "invalid", deliveries: vec![], errors }
            }
            Item::Stored(r) => {
                let errors = if r.status == IngestStatus::Conflict {
                    vec![FieldError::new(
                        format!("events[{index}]"),
                        "conflict",
                        "an event with this id and different content exists; the original stands",
                    )]
                } else {
                    vec![]
                };
                ItemResult {
                    index,
                    event_id: Some(r.event_id),
                    status: r.status.as_str(),
                    deliveries: r.deliveries,
                    errors,
                }
            }
        })
        .collect();
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

pub async fn post_identity(
    State(app): State<Arc<App>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let from_browser = super::capture::admit(&app, &headers, peer.map(|Extension(ConnectInfo(a))| a))?;
    let value = json_body(&headers, body)?;
    match intake::identity(app.ledger(), value, from_browser, Utc::now()).await? {
        Identity::Invalid(errors) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_identity",
            "Invalid identity capture",
            summary(&errors),
        )
        .with_errors(errors)),
        Identity::Captured { subject, due } => {
            if due {
                app.wake_workers();
            }
            Ok((StatusCode::ACCEPTED, Json(json!({"subject": subject, "status": "captured"}))).into_response())
        }
    }
}
