//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
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

/// The metrics in OpenMetrics when the scraper's `Accept` names it (Prometheus does), else in
/// the Prometheus text format 0.0.4.
pub async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let queues = match app.store.queues().await {
        Ok(queues) => queues,
        Err(e) => return Problem::from(e).into_response(),
    };
    let destinations: Vec<&str> = app.config.destinations.iter().map(|d| d.name()).collect();
    let text = app.metrics.render(&queues, &destinations, app.config.server.workers, chrono::Utc::now());
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/openmetrics-text"));
    if openmetrics {
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
            .into_response()
    } else {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            crate::telemetry::to_prometheus_text(&text),
        )
            .into_response()
    }
}
