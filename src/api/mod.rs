//! The HTTP API (axum): ingest, the identity bridge, the ledger's views, replay, health and
//! metrics. Handlers parse at the edge and call `ingest` and `store`; they never call a platform.

// A `Problem` is returned at most once per request, on the way out; boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod admin;
pub mod auth;
pub mod capture;
mod dashboard;
mod events;
pub mod find;
mod http_metrics;
mod late;
mod openapi;
mod ops;
pub mod problem;
mod reconcile;
mod sources;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::{middleware, Router};
use bytes::Bytes;
use tokio::sync::Notify;

use self::auth::Role;
use self::problem::Problem;
use crate::api::auth::Auth;
use crate::config::Config;
use crate::core::plan::Planner;
use crate::sources::SourceSecrets;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Everything a running instance shares between the API and the workers.
pub struct App {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub planner: Arc<Planner>,
    pub metrics: Arc<Metrics>,
    pub auth: Auth,
    /// Browser captures per client address (`auth.capture_per_minute`).
    pub capture_limit: capture::CaptureLimiter,
    /// The sources' signing secrets and write keys, resolved at start.
    pub sources: SourceSecrets,
    pub(crate) wake: Vec<Arc<Notify>>,
    /// What fires (`crate::alerts`), for `GET /v1/alerts`.
    pub alerts: Arc<crate::alerts::AlertBook>,
}

impl App {
    /// What intake (`ingest::intake`) writes to and counts with.
    pub fn ledger(&self) -> crate::ingest::intake::Ledger<'_> {
        crate::ingest::intake::Ledger { store: &*self.store, planner: &self.planner, metrics: &self.metrics }
    }

    /// Tells every worker that new work may be due.
    pub fn wake_workers(&self) {
        for w in &self.wake {
            w.notify_one();
        }
    }
}

pub fn router(app: Arc<App>) -> Router {
    let limit = app.config.server.max_body_bytes;
    // Bearer auth runs before the handlers' extractors: no path or query is parsed for a caller
    // without credentials.
    let ingest = Router::new()
        // GET is admin's (its handler requires the role); one method router keeps one auth layer
        // in front of `/v1/events`, so another method is 405 for an ingest token.
        .route("/v1/events", post(events::post_events).get(find::list_events))
        .route_layer(middleware::from_fn_with_state((app.clone(), Role::Ingest), auth::require));
    // A capture key (public, in the browser) may post identities and nothing else; CORS wraps the
    // auth layer so that a browser's preflight is answered before any credential is asked for.
    let browser = Router::new()
        .route("/v1/identities", post(events::post_identity))
        .route_layer(middleware::from_fn_with_state((app.clone(), Role::Capture), auth::require))
        .layer(capture::cors(&app.config.auth.capture_origins));
    let admin = Router::new()
        .route("/v1/search", get(find::search))
        .route("/v1/events/{id}", get(admin::get_event))
        .route("/v1/deliveries", get(admin::list_deliveries))
        .route("/v1/deliveries/replay", post(admin::replay))
        .route("/v1/deliveries/settle", post(admin::settle))
        .route("/v1/deliveries/over-time", get(late::get_over_time))
        .route("/v1/receipts", get(admin::list_receipts))
        .route("/v1/late-arrivals", get(late::get_late_arrivals))
        .route("/v1/coverage", get(late::get_coverage))
        .route("/v1/alerts", get(late::get_alerts))
        .route("/v1/reconcile", post(reconcile::post_reconcile).layer(DefaultBodyLimit::max(reconcile::MAX_BODY)))
        .route_layer(middleware::from_fn_with_state((app.clone(), Role::Admin), auth::require));
    Router::new()
        .merge(ingest)
        .merge(browser)
        .merge(admin)
        .route("/v1/capture.js", get(capture::script))
        .route("/v1/webhooks/stripe", post(sources::stripe))
        .route("/v1/webhooks/shopify", post(sources::shopify))
        .route("/v1/batch", post(sources::segment_batch))
        .route("/v1/track", post(sources::segment_track))
        .route("/v1/identify", post(sources::segment_identify))
        .route("/", get(dashboard::page))
        .route("/console/replay", post(dashboard::replay))
        .route("/console/settle", post(dashboard::settle))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::document))
        .fallback(|| async { Problem::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::map_response(problem::ensure_problem))
        .layer(middleware::from_fn_with_state(app.clone(), http_metrics::track))
        .with_state(app)
}

/// Reads a JSON body: refuses other content types (415), oversized bodies (413) and bytes that
/// are not JSON (400), each as problem+json.
pub(crate) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<serde_json::Value, Problem> {
    use axum::http::StatusCode;
    if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        let ct = ct.to_ascii_lowercase();
        if !(ct.starts_with("application/json") || ct.contains("+json")) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                format!("send application/json, not {ct}"),
            ));
        }
    }
    let bytes = body.map_err(|r| {
        if crate::serve::is_body_timeout(&r) {
            Problem::request_timeout(format!("{r}; send the whole body sooner"))
        } else if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", r.body_text())
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", "Unreadable body", r.body_text())
        }
    })?;
    Ok(crate::ingest::json::parse(&bytes)?)
}
