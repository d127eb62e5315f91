//! `POST /v1/reconcile` (admin): `surety reconcile` over HTTP. The source export and the
//! platform reports come either as text in a JSON body or as files in a `multipart/form-data`
//! body (the fields mirror the command line's flags); the answer is the same report as `--json`.
//! A platform's side may instead be `"api"` (a JSON string, or a multipart text part without a
//! file name): read back by Surety as `--platform DEST=api` does.
//! Every report it answers is kept in the ledger (`reconcile::record`, by the admin token's
//! label) for the dashboard (`/?view=reconcile`) and the `reconcile_unexplained` alert rule.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::multipart::{Field, Multipart};
use axum::extract::{FromRequest, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use serde::Deserialize;

use super::auth::Role;
use super::json_body;
use super::problem::Problem;
use crate::api::App;
use crate::import::Mapping;
use crate::reconcile::{self, Format, Input, PlatformInput, ReconcileError, Report, Request};

/// Reconcile bodies carry whole exports: up to 256 MiB.
pub const MAX_BODY: usize = 256 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReconcileRequest {
    source: FileInput,
    /// Each a `FileInput`, or the string `"api"`.
    #[serde(default)]
    platforms: BTreeMap<String, serde_json::Value>,
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

/// What either body form asks, before the bounds are read.
struct Asked {
    source: Input,
    platforms: Vec<(String, PlatformInput)>,
    since: Option<String>,
    until: Option<String>,
    kinds: Vec<String>,
    map: Vec<(String, String)>,
    value_tolerance: Option<f64>,
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_reconcile", "Invalid reconcile request", detail)
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

pub async fn post_reconcile(State(app): State<Arc<App>>, req: HttpRequest) -> Result<Json<Report>, Problem> {
    let headers = req.headers().clone();
    app.auth.require(&headers, Role::Admin)?;
    let asked = if is_multipart(&headers) {
        let form = Multipart::from_request(req, &())
            .await
            .map_err(|r| Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", "Unreadable body", r.body_text()))?;
        from_form(form).await?
    } else {
        let body = Bytes::from_request(req, &()).await;
        from_json(&headers, body)?
    };
    if let Some(bad) = asked.kinds.iter().find(|k| crate::core::Kind::parse(k).is_err()) {
        return Err(invalid(format!(
            "kind '{bad}' is not a kind: 1-64 lowercase letters, digits and '_', starting with a letter"
        )));
    }
    let since = asked.since.as_deref().map(|s| reconcile::parse_bound(s, false)).transpose().map_err(invalid)?;
    let until = asked.until.as_deref().map(|s| reconcile::parse_bound(s, true)).transpose().map_err(invalid)?;
    let tolerance = asked.value_tolerance.unwrap_or(0.01);
    if !(tolerance >= 0.0 && tolerance.is_finite()) {
        return Err(invalid("value_tolerance must be a number of at least 0"));
    }
    let now = Utc::now();
    let request = Request {
        source: asked.source,
        platforms: asked.platforms,
        since,
        until,
        kinds: asked.kinds,
        mapping: Mapping::new(&asked.map),
        tolerance,
        now,
    };
    match reconcile::reconcile(app.store.as_ref(), reconcile::scopes(&app.config), request).await {
        Ok(report) => {
            reconcile::record(app.store.as_ref(), now, &app.auth.who(&headers), &report).await?;
            Ok(Json(report))
        }
        Err(ReconcileError::Usage(m)) => Err(invalid(m)),
        Err(ReconcileError::ReadBack(m)) => {
            Err(Problem::new(StatusCode::BAD_GATEWAY, "read_back_failed", "The platform's count could not be read", m))
        }
        Err(ReconcileError::Store(e)) => Err(Problem::from(e)),
    }
}

fn from_json(
    headers: &HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Asked, Problem> {
    let value = json_body(headers, body)?;
    let req: ReconcileRequest = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let mut platforms = Vec::new();
    for (dest, side) in req.platforms {
        let input = if side.as_str() == Some("api") {
            PlatformInput::Api
        } else {
            let file: FileInput = serde_json::from_value(side)
                .map_err(|e| invalid(format!("platforms.{dest}: {e} (expected {{format, content}} or \"api\")")))?;
            PlatformInput::File(file.input(format!("platforms.{dest}")))
        };
        platforms.push((dest, input));
    }
    Ok(Asked {
        source: req.source.input("source".into()),
        platforms,
        since: req.since,
        until: req.until,
        kinds: req.kinds,
        map: req.map.into_iter().collect(),
        value_tolerance: req.value_tolerance,
    })
}

/// A multipart body: `source` (a file), `platforms.DEST` (a file per destination, or a text
/// part `api`), `since`,
/// `until`, `kind` and `map` (`OLD=NEW`, both repeatable), `value_tolerance`. A file's format
/// comes from its part's content type (`text/csv`; `application/x-ndjson`, `application/jsonl`)
/// or else from its file name as on the command line (`.ndjson`/`.jsonl`, anything else CSV).
async fn from_form(mut form: Multipart) -> Result<Asked, Problem> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", e.body_text())
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", "Unreadable body", e.body_text())
        }
    };
    let mut source = None;
    let mut platforms = Vec::new();
    let (mut since, mut until, mut tolerance) = (None, None, None);
    let (mut kinds, mut map) = (Vec::new(), Vec::new());
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "source" => {
                if source.is_some() {
                    return Err(invalid("more than one 'source' part"));
                }
                source = Some(file(field, "source".into()).await.map_err(unreadable)?.0);
            }
            "since" => since = Some(text(field).await.map_err(unreadable)?),
            "until" => until = Some(text(field).await.map_err(unreadable)?),
            "kind" => kinds.push(text(field).await.map_err(unreadable)?),
            "map" => {
                let m = text(field).await.map_err(unreadable)?;
                map.push(crate::import::parse_map(&m).map_err(|e| invalid(format!("map: {e}")))?);
            }
            "value_tolerance" => {
                let t = text(field).await.map_err(unreadable)?;
                let t =
                    t.trim().parse::<f64>().map_err(|_| invalid(format!("value_tolerance: '{t}' is not a number")))?;
                tolerance = Some(t);
            }
            other => match other.strip_prefix("platforms.").filter(|d| !d.is_empty()) {
                Some(dest) => {
                    if platforms.iter().any(|(d, _)| d == dest) {
                        return Err(invalid(format!("more than one 'platforms.{dest}' part")));
                    }
                    let dest = dest.to_owned();
                    // A text part (no file name) saying `api`: read back, as `DEST=api`.
                    let named = field.file_name().is_some();
                    let input = file(field, format!("platforms.{dest}")).await.map_err(unreadable)?;
                    let input = match input {
                        (_, Some(bytes)) if !named && bytes.trim_ascii() == b"api" => PlatformInput::Api,
                        (input, _) => PlatformInput::File(input),
                    };
                    platforms.push((dest, input));
                }
                None => {
                    return Err(invalid(format!(
                        "unknown part '{other}': expected source, platforms.DEST, since, until, kind, map, \
                         value_tolerance"
                    )))
                }
            },
        }
    }
    let source = source.ok_or_else(|| invalid("the 'source' part (the source export) is missing"))?;
    Ok(Asked { source, platforms, since, until, kinds, map, value_tolerance: tolerance })
}

async fn text(field: Field<'_>) -> Result<String, axum::extract::multipart::MultipartError> {
    field.text().await
}

/// A file part as an input, with its bytes when it is short enough to be a word (`api`).
async fn file(
    field: Field<'_>,
    name: String,
) -> Result<(Input, Option<Bytes>), axum::extract::multipart::MultipartError> {
    let by_type = field.content_type().map(|ct| ct.to_ascii_lowercase()).and_then(|ct| {
        if ct.starts_with("application/x-ndjson") || ct.starts_with("application/jsonl") || ct.contains("ndjson") {
            Some(Format::Ndjson)
        } else if ct.starts_with("text/csv") {
            Some(Format::Csv)
        } else {
            None
        }
    });
    let format = by_type.unwrap_or_else(|| Format::of(field.file_name().unwrap_or_default()));
    let bytes = field.bytes().await?;
    let short = (bytes.len() <= 16).then(|| bytes.clone());
    Ok((Input { name, format, reader: Box::new(std::io::Cursor::new(bytes)) }, short))
}
