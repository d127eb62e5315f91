//! `GET /v1/late-arrivals` (admin): `surety late` over HTTP — per event day, what arrived after
//! the day had ended, what was skipped as too late, and what changed since a given time.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;

use super::auth::Role;
use super::problem::Problem;
use crate::api::App;
use crate::reconcile::late::{self, LateError, LateReport};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateParams {
    since: Option<String>,
    until: Option<String>,
    changed_since: Option<String>,
    /// Comma-separated kinds.
    kind: Option<String>,
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "invalid_query", "Invalid query", detail)
}

pub async fn get_late_arrivals(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<LateParams>, QueryRejection>,
) -> Result<Json<LateReport>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let Query(p) = query.map_err(|e| invalid(e.body_text()))?;
    let kinds = p.kind.map(|k| k.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect());
    let q = late::query(
        p.since.as_deref(),
        p.until.as_deref(),
        p.changed_since.as_deref(),
        kinds.unwrap_or_default(),
        Utc::now(),
    )
    .map_err(invalid)?;
    match late::late_arrivals(app.store.as_ref(), &q).await {
        Ok(report) => Ok(Json(report)),
        Err(LateError::Store(e)) => Err(Problem::from(e)),
        Err(e @ LateError::Overflow) => {
            Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "count_overflow", "Count overflow", e.to_string()))
        }
    }
}
