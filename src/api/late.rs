//! `GET /v1/late-arrivals`, `GET /v1/coverage`, `GET /v1/alerts` and `GET /v1/deliveries/over-time`
//! (admin): `surety late`, `surety coverage`, the alert book and the console's charts over HTTP —
//! the measurement loop, read only.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use serde::Deserialize;

use super::auth::Role;
use super::problem::Problem;
use crate::alerts::AlertsView;
use crate::api::App;
use crate::reconcile::coverage::{self, CoverageQuery, CoverageReport, GroupBy};
use crate::reconcile::late::{self, CountError, LateReport};
use crate::store::over_time::{self, HourCounts, MAX_HOURS};

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
    late::late_arrivals(app.store.as_ref(), &q).await.map(Json).map_err(Problem::from)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageParams {
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    by: GroupBy,
}

/// `GET /v1/coverage` (admin): `surety coverage` over HTTP.
pub async fn get_coverage(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<CoverageParams>, QueryRejection>,
) -> Result<Json<CoverageReport>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let Query(p) = query.map_err(|e| invalid(e.body_text()))?;
    let (since, until) = late::window(p.since.as_deref(), p.until.as_deref(), Utc::now()).map_err(invalid)?;
    let q = CoverageQuery { since, until, by: p.by };
    coverage::coverage(app.store.as_ref(), &q).await.map(Json).map_err(Problem::from)
}

impl From<CountError> for Problem {
    fn from(e: CountError) -> Self {
        match e {
            CountError::Store(e) => Problem::from(e),
            e @ CountError::Overflow => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "count_overflow", "Count overflow", e.to_string())
            }
        }
    }
}

/// `GET /v1/alerts` (admin): what fires now and the recent firing and resolved messages.
pub async fn get_alerts(State(app): State<Arc<App>>, headers: HeaderMap) -> Result<Json<AlertsView>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    Ok(Json(app.alerts.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverTimeParams {
    hours: Option<u32>,
}

/// What `GET /v1/deliveries/over-time` answers: the window and its non-empty hours.
#[derive(serde::Serialize)]
pub struct OverTime {
    /// The first hour of the window (UTC, a whole hour).
    since: chrono::DateTime<Utc>,
    hours: u32,
    /// Per destination and hour with anything in it, by destination then hour.
    counts: Vec<HourCounts>,
}

/// `GET /v1/deliveries/over-time?hours=N` (admin): the console's charts as JSON — per
/// destination and UTC hour of the last N (1 to 168, default 24, the current hour included),
/// deliveries that ended delivered or failed, and attempts that ended in a retry.
pub async fn get_over_time(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<OverTimeParams>, QueryRejection>,
) -> Result<Json<OverTime>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let Query(p) = query.map_err(|e| invalid(e.body_text()))?;
    let hours = p.hours.unwrap_or(24);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(invalid(format!("hours: must be 1 to {MAX_HOURS}")));
    }
    let since = over_time::since(Utc::now(), hours);
    let counts = app.store.deliveries_over_time(since).await?;
    Ok(Json(OverTime { since, hours, counts }))
}
