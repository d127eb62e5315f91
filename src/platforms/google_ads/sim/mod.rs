//! A Google Ads Data Manager API stand-in: `POST /token` (the service-account JWT bearer grant),
//! `POST /v1/events:ingest` (bearer required; the documented validation with fast-fail; answers
//! `{requestId}`), `GET /v1/requestStatus:retrieve` (`PROCESSING`, then the configured outcome).
//! It keeps the conversions as Google would: one per conversion action and `transactionId`, a
//! repeat overwriting value and currency (an adjustment).
//!
//! Source of the behaviour: developers.google.com/data-manager/api (reference, devguides on
//! offline conversions, adjustments, formatting, limits, errors, diagnostics), the protos under
//! `google/ads/datamanager/v1/`, developers.google.com/identity/protocols/oauth2/service-account;
//! docs/platforms.md §Google Ads. Injected faults (`sim::Fault`) hit the API endpoints, not `/token`,
//! which fails through [`GoogleAdsSimState::refuse_tokens`] instead.

mod api;
mod state;
mod token;
mod validate;

#[cfg(test)]
mod tests;

use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Duration, Utc};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::state::{Conversion, Endpoint, GoogleAdsSimState, Processing, ReceivedEvent, ReceivedRequest};
pub use self::token::{check_grant, check_grant_for, GrantError, GRANT_TYPE, SCOPE};
pub use self::validate::{validate, Violation, MAX_DESTINATIONS, MAX_EVENTS, MAX_USER_IDENTIFIERS};

/// A test-only service-account key file (Google's JSON format) the simulator trusts. Public,
/// belongs to no Google project, grants nothing anywhere.
pub const TEST_SERVICE_ACCOUNT_JSON: &str =
    include_str!("../../../../tests/fixtures/google_ads/test_service_account.json");
/// The public half of [`TEST_SERVICE_ACCOUNT_JSON`]'s key.
pub const TEST_PUBLIC_KEY_PEM: &str = include_str!("../../../../tests/fixtures/google_ads/test_public_key.pem");
/// The `client_email` of [`TEST_SERVICE_ACCOUNT_JSON`].
pub const TEST_CLIENT_EMAIL: &str = "surety-test@surety-test.iam.gserviceaccount.com";

/// The simulator's routes, to serve on their own ([`start`]) or mount elsewhere.
pub fn router(state: GoogleAdsSimState) -> Router {
    Router::new()
        .route("/token", post(grant))
        .route("/v1/events:ingest", post(api::ingest))
        .route("/v1/requestStatus:retrieve", get(api::status))
        .layer(DefaultBodyLimit::max(16 << 20))
        .with_state(state)
}

/// A `google.rpc.Status` error answer.
fn rpc_error(
    code: StatusCode,
    status: &str,
    message: &str,
    reason: Option<&str>,
    violations: &[Violation],
) -> Response {
    let mut details = Vec::new();
    if let Some(reason) = reason {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
            "domain": "datamanager.googleapis.com"}));
    }
    if !violations.is_empty() {
        details.push(json!({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations}));
    }
    let body = json!({"error": {"code": code.as_u16(), "message": message, "status": status, "details": details}});
    (code, Json(body)).into_response()
}

/// The canonical `google.rpc.Code` name of an HTTP status.
fn status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        501 => "UNIMPLEMENTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

async fn grant(State(state): State<GoogleAdsSimState>, body: Bytes) -> Response {
    let now = Utc::now();
    let checked = match state.token_refusal() {
        Some(error) => {
            Err(GrantError { error: "invalid_grant", description: format!("Refused by the simulator ({error}).") })
        }
        None => check_grant(&body, &state.inner.key, &state.inner.client_email, state.audience().as_deref()),
    };
    let (code, answer) = match checked {
        Ok(()) => {
            let lifetime = state.inner.token_lifetime_secs.load(Ordering::Relaxed);
            let token = format!("ya29.sim-{}", hex::encode(rand::random::<[u8; 16]>()));
            state.data().tokens.insert(token.clone(), now + Duration::seconds(lifetime));
            state.inner.grants.fetch_add(1, Ordering::Relaxed);
            (StatusCode::OK, json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}))
        }
        Err(e) => (StatusCode::BAD_REQUEST, json!({"error": e.error, "error_description": e.description})),
    };
    let request = ReceivedRequest {
        endpoint: Endpoint::Token,
        body: None,
        status: code.as_u16(),
        request_id: None,
        received_at: now,
    };
    state.record(&mut state.data(), request);
    (code, Json(answer)).into_response()
}

/// A simulator serving on 127.0.0.1 in a background task. Dereferences to its state, so the
/// fault and inspection methods are at hand; clones share the server.
#[derive(Clone)]
pub struct GoogleAdsSim {
    /// `http://127.0.0.1:PORT`: the `base_url` to configure a Google Ads destination with.
    pub base_url: String,
    /// `http://127.0.0.1:PORT/token`: its `token_url`.
    pub token_url: String,
    state: GoogleAdsSimState,
    stop: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// Binds 127.0.0.1 on a free port and serves a simulator trusting the committed test key.
pub async fn start() -> std::io::Result<GoogleAdsSim> {
    start_with(GoogleAdsSimState::with_test_key()).await
}

/// Serves `state` on a free port of 127.0.0.1; assertions must name this server's `/token`.
pub async fn start_with(state: GoogleAdsSimState) -> std::io::Result<GoogleAdsSim> {
    serve(state, &crate::sim::SimOptions::default()).await
}

/// Serves `state` on a free port of 127.0.0.1 as `options` say (routes wrapped, bodies kept or not).
pub async fn serve(state: GoogleAdsSimState, options: &crate::sim::SimOptions) -> std::io::Result<GoogleAdsSim> {
    if options.counting_only {
        state.set_recording(false);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let token_url = format!("{base_url}/token");
    state.set_audience(Some(token_url.clone()));
    let stop = CancellationToken::new();
    let app = options.apply(router(state.clone()));
    let signal = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(signal).await {
            tracing::warn!(error = %e, "the Google Ads simulator stopped");
        }
    });
    Ok(GoogleAdsSim { base_url, token_url, state, stop, task: Arc::new(Mutex::new(Some(task))) })
}

impl GoogleAdsSim {
    pub fn state(&self) -> &GoogleAdsSimState {
        &self.state
    }

    /// Stops serving: waits up to 5 s for requests in progress, then cuts them off.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(std::time::Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl Deref for GoogleAdsSim {
    type Target = GoogleAdsSimState;
    fn deref(&self) -> &GoogleAdsSimState {
        &self.state
    }
}
