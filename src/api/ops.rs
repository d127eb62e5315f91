//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use crate::api::App;

pub async fn healthz() -> &'static str {
    "ok"
}

/// Longest `/readyz` waits for the ledger: an unreachable database is "not ready", not a hang.
const READY_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Ready when the ledger can commit (see `Store::ready`); else 503 `not_ready` with the reason.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<&'static str, Problem> {
    match tokio::time::timeout(READY_WAIT, app.store.ready()).await {
        Ok(Ok(())) => Ok("ready"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready");
            Err(Problem::not_ready(format!("the ledger cannot commit: {e}")))
        }
        Err(_) => Err(Problem::not_ready(format!("the ledger did not answer within {} s", READY_WAIT.as_secs()))),
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.store.queues().await {
        Ok(queues) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            app.metrics.render(&queues, chrono::Utc::now()),
        )
            .into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}
