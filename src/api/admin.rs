//! The ledger's views and replay (admin role).

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;

use super::auth::Role;
use super::json_body;
use super::problem::Problem;
use crate::api::App;
use crate::core::delivery::reason;
use crate::core::DeliveryState;
use crate::store::{
    DeliveryFilter, DeliveryView, EventView, ReceiptFilter, ReceiptView, ReplayReport, ReplaySelector, SettleOutcome,
    SettledAs, Settlement, SettlementView, MAX_SETTLEMENT_NOTE,
};

pub async fn get_event(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<EventView>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    match app.store.event(&id).await? {
        Some(view) => Ok(Json(view)),
        None => Err(Problem::not_found(format!("no event with id {id}"))),
    }
}

pub async fn list_deliveries(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<DeliveryFilter>, QueryRejection>,
) -> Result<Json<Vec<DeliveryView>>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let Query(filter) =
        query.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", "Invalid query", e.body_text()))?;
    Ok(Json(app.store.deliveries(filter).await?))
}

/// What the sources handed over: webhooks (mapped, ignored, invalid) and Segment messages that
/// could not become events.
pub async fn list_receipts(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<ReceiptFilter>, QueryRejection>,
) -> Result<Json<Vec<ReceiptView>>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let Query(filter) =
        query.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_query", "Invalid query", e.body_text()))?;
    Ok(Json(app.store.receipts(filter).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    #[serde(default)]
    delivery_ids: Vec<i64>,
    event_id: Option<String>,
    destination: Option<String>,
    state: Option<crate::core::DeliveryState>,
    reason: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    dry_run: bool,
}

pub async fn replay(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReplayReport>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let value = json_body(&headers, body)?;
    let req: ReplayRequest = serde_json::from_value(value).map_err(|e| {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_replay", "Invalid replay request", e.to_string())
    })?;
    let s = ReplaySelector {
        delivery_ids: req.delivery_ids,
        event_id: req.event_id,
        destination: req.destination,
        state: req.state,
        reason: req.reason,
        dry_run: req.dry_run,
        by: Some(app.auth.who(&headers)),
    };
    if s.delivery_ids.is_empty()
        && s.event_id.is_none()
        && s.destination.is_none()
        && s.state.is_none()
        && s.reason.is_none()
    {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_replay",
            "Invalid replay request",
            "name what to replay: delivery_ids, event_id, destination, state and/or reason",
        ));
    }
    let report = app.store.replay(s, req.force, Utc::now()).await?;
    if !report.replayed.is_empty() && !report.dry_run {
        tracing::info!(replayed = report.replayed.len(), forced = req.force, "deliveries replayed");
        app.wake_workers();
    }
    Ok(Json(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettleRequest {
    id: i64,
    #[serde(rename = "as")]
    settled_as: SettledAs,
    note: Option<String>,
}

#[derive(serde::Serialize)]
pub struct Settled {
    delivery_id: i64,
    state: DeliveryState,
    reason: &'static str,
    settlement: SettlementView,
}

/// A person who checked the platform ends a dead, rejected or in_doubt delivery as `delivered`
/// or `not_delivered`, without sending anything; recorded with the admin token's label.
pub async fn settle(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Settled>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let value = json_body(&headers, body)?;
    let invalid = |detail: String| {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settlement", "Invalid settlement", detail)
    };
    let req: SettleRequest = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let note = req.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_SETTLEMENT_NOTE) {
        return Err(invalid(format!("note: at most {MAX_SETTLEMENT_NOTE} characters")));
    }
    let settlement = Settlement { delivery_id: req.id, settled_as: req.settled_as, by: app.auth.who(&headers), note };
    match app.store.settle(settlement, Utc::now()).await? {
        SettleOutcome::Settled { destination, state, settlement } => {
            tracing::info!(delivery = req.id, settled_as = %req.settled_as, by = %settlement.by, "delivery settled");
            app.metrics.delivery(&destination, state.as_str(), Some(reason::SETTLED_BY_PERSON));
            Ok(Json(Settled { delivery_id: req.id, state, reason: reason::SETTLED_BY_PERSON, settlement }))
        }
        SettleOutcome::NotFound => Err(Problem::not_found(format!("no delivery with id {}", req.id))),
        SettleOutcome::Refused { state, reason, why } => Err(Problem::new(
            StatusCode::CONFLICT,
            "not_settleable",
            "Not settleable",
            format!("delivery {} is {state}{}: {why}", req.id, reason.map(|r| format!(":{r}")).unwrap_or_default()),
        )),
    }
}
