//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use crate::App;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the ledger answers.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, Problem> {
    app.store.ping().await.map_err(|e| Problem::storage(&e))?;
    Ok("ready")
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.store.queues().await {
        Ok(queues) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            app.metrics.render(&queues, chrono::Utc::now()),
        )
            .into_response(),
        Err(e) => Problem::storage(&e).into_response(),
    }
}
