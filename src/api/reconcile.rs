//! `POST /v1/reconcile` (admin): `surety reconcile` over HTTP. The source export and the
//! platform reports come as text in a JSON body; the answer is the same report as `--json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;

use super::auth::Role;
use super::json_body;
use super::problem::Problem;
use crate::api::App;
use crate::import::Mapping;
use crate::reconcile::{self, Format, Input, ReconcileError, Report, Request};

/// Reconcile bodies carry whole exports: up to 256 MiB.
pub const MAX_BODY: usize = 256 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileRequest {
    source: FileInput,
    #[serde(default)]
    platforms: BTreeMap<String, FileInput>,
    since: Option<String>,
    until: Option<String>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    map: BTreeMap<String, String>,
    value_tolerance: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileInput {
    format: Format,
    content: String,
}

impl FileInput {
    fn input(self, name: String) -> Input {
        Input { name, format: self.format, reader: Box::new(std::io::Cursor::new(self.content.into_bytes())) }
    }
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_reconcile", "Invalid reconcile request", detail)
}

pub async fn post_reconcile(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Report>, Problem> {
    app.auth.require(&headers, Role::Admin)?;
    let value = json_body(&headers, body)?;
    let req: ReconcileRequest = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let since = req.since.as_deref().map(|s| reconcile::parse_bound(s, false)).transpose().map_err(invalid)?;
    let until = req.until.as_deref().map(|s| reconcile::parse_bound(s, true)).transpose().map_err(invalid)?;
    let tolerance = req.value_tolerance.unwrap_or(0.01);
    if !(tolerance >= 0.0 && tolerance.is_finite()) {
        return Err(invalid("value_tolerance must be a number of at least 0"));
    }
    let map: Vec<(String, String)> = req.map.into_iter().collect();
    let request = Request {
        source: req.source.input("source".into()),
        platforms: req
            .platforms
            .into_iter()
            .map(|(dest, f)| (dest.clone(), f.input(format!("platforms.{dest}"))))
            .collect(),
        since,
        until,
        kinds: req.kinds,
        mapping: Mapping::new(&map),
        tolerance,
        now: Utc::now(),
    };
    match reconcile::reconcile(app.store.as_ref(), reconcile::scopes(&app.config), request).await {
        Ok(report) => Ok(Json(report)),
        Err(ReconcileError::Usage(m)) => Err(invalid(m)),
        Err(ReconcileError::Store(e)) => Err(Problem::from(e)),
    }
}
