//! Every HTTP request counted and timed by route pattern, method and status code
//! (`surety_http_requests_total`, `surety_http_request_duration_seconds`), and logged at debug
//! level. The route is the pattern (`/v1/events/{id}`), never the concrete path: an id in a
//! label would make one series per event.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::api::App;
use crate::telemetry::HttpLabels;

/// The route label of a request that matched no route (a 404 from the fallback).
pub const UNMATCHED: &str = "unmatched";

pub async fn track(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    // Only the standard methods: anything else a client makes up is one label, not many.
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::DELETE | Method::HEAD | Method::OPTIONS | Method::PATCH => {
            request.method().as_str().to_owned()
        }
        _ => "other".to_owned(),
    };
    let route = request.extensions().get::<MatchedPath>().map_or(UNMATCHED, |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    let elapsed = start.elapsed();
    let status = response.status().as_u16();
    tracing::debug!(%method, %route, status, elapsed_ms = elapsed.as_secs_f64() * 1000.0, "http request");
    app.metrics.http_request(HttpLabels { method, route, status: status.to_string() }, elapsed.as_secs_f64());
    response
}
