//! The simulator's Data API: the service-account token grant (`POST /token`, the committed test
//! key, scope `analytics.readonly`) and `POST /v1beta/properties/{id}:runReport` with the
//! dimensions `transactionId`, `date`, `eventName` and the metrics `purchaseRevenue`,
//! `eventCount`, `transactions`; `dateRanges`, an `eventName` `dimensionFilter` (`inListFilter`
//! or an exact `stringFilter`), `limit` (at most 250,000) and `offset`; `rowCount`. Days are UTC
//! (a real property reports in its own time zone). Tests make GA4 lose or double a transaction
//! ([`Ga4SimState::drop_from_reports`], [`Ga4SimState::double_in_reports`]).
//!
//! Source: developers.google.com/analytics/devguides/reporting/data/v1/rest/v1beta/properties/runReport;
//! docs/platforms.md §Reading the platforms' side back.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{NaiveDate, TimeZone, Utc};
use serde_json::{json, Value};

use super::Ga4SimState;
use crate::platforms::google_ads::sim::{check_grant_for, TEST_CLIENT_EMAIL, TEST_PUBLIC_KEY_PEM};
use crate::sim::Fault;

/// The scope the simulated grant requires.
pub const SCOPE: &str = "https://www.googleapis.com/auth/analytics.readonly";
const DIMENSIONS: [&str; 3] = ["transactionId", "date", "eventName"];
const METRICS: [&str; 3] = ["purchaseRevenue", "eventCount", "transactions"];
const MAX_LIMIT: u64 = 250_000;

/// The Data API's state: tokens issued and the platform's injected differences.
#[derive(Default)]
pub struct DataApi {
    tokens: HashSet<String>,
    refusal: Option<String>,
    dropped: HashSet<String>,
    doubled: HashSet<String>,
}

impl Ga4SimState {
    fn data_api(&self) -> std::sync::MutexGuard<'_, DataApi> {
        self.inner.data_api.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// GA4 loses this transaction: its reports leave it out.
    pub fn drop_from_reports(&self, transaction_id: &str) {
        self.data_api().dropped.insert(transaction_id.to_owned());
    }

    /// GA4 counts this transaction twice in its reports.
    pub fn double_in_reports(&self, transaction_id: &str) {
        self.data_api().doubled.insert(transaction_id.to_owned());
    }

    /// The token endpoint refuses every grant with this OAuth error, or heals (`None`).
    pub fn refuse_tokens(&self, error: Option<&str>) {
        self.data_api().refusal = error.map(str::to_owned);
    }

    /// `runReport` requests answered 200 (pages read).
    pub fn run_report_count(&self) -> u64 {
        self.inner.run_reports.load(Ordering::Relaxed)
    }
}

fn rpc_error(code: StatusCode, status: &str, message: &str) -> Response {
    (code, Json(json!({"error": {"code": code.as_u16(), "message": message, "status": status}}))).into_response()
}

fn invalid(message: impl AsRef<str>) -> Response {
    rpc_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message.as_ref())
}

pub(super) async fn grant(State(state): State<Ga4SimState>, body: Bytes) -> Response {
    let refusal = state.data_api().refusal.clone();
    let checked = match (refusal, jsonwebtoken::DecodingKey::from_rsa_pem(TEST_PUBLIC_KEY_PEM.as_bytes())) {
        (Some(error), _) => Err((error, "Refused by the simulator.".to_owned())),
        (None, Ok(key)) => check_grant_for(&body, &key, TEST_CLIENT_EMAIL, None, SCOPE)
            .map_err(|e| (e.error.to_owned(), e.description)),
        (None, Err(_)) => Err(("internal".into(), "the test key does not parse".into())),
    };
    match checked {
        Ok(()) => {
            let token = format!("ya29.ga4sim-{}", hex::encode(rand::random::<[u8; 16]>()));
            state.data_api().tokens.insert(token.clone());
            Json(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})).into_response()
        }
        Err((error, description)) => {
            (StatusCode::BAD_REQUEST, Json(json!({"error": error, "error_description": description}))).into_response()
        }
    }
}

pub(super) async fn run_report(
    State(state): State<Ga4SimState>,
    Path(target): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(property) = target.strip_suffix(":runReport") else {
        return rpc_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Method not found.");
    };
    match state.inner.faults.take() {
        Some(Fault::Status(code)) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let http = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return rpc_error(http, if code == 503 { "UNAVAILABLE" } else { "INTERNAL" }, "injected fault");
        }
        Some(Fault::TooManyRequests { .. }) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            return rpc_error(StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED", "Exhausted property tokens.");
        }
        Some(Fault::Delay(_)) | None => {}
    }
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| state.data_api().tokens.contains(t)) {
        let message = "Request had invalid authentication credentials. Expected OAuth 2 access token.";
        return rpc_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message);
    }
    if property.is_empty() || !property.bytes().all(|b| b.is_ascii_digit()) {
        return invalid(format!("Invalid property ID: {property}. A numeric Property ID is required."));
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return invalid("Invalid JSON payload received.");
    };
    match report(&state, &request) {
        Ok(answer) => {
            state.inner.run_reports.fetch_add(1, Ordering::Relaxed);
            Json(answer).into_response()
        }
        Err(message) => invalid(message),
    }
}

/// An int64 as proto3 JSON writes it: a number or a decimal string.
fn int64(v: Option<&Value>, field: &str) -> Result<Option<i64>, String> {
    match v {
        None => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| format!("{field} is not an integer")),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| format!("{field} is not an integer")),
        Some(_) => Err(format!("{field} is not an integer")),
    }
}

fn names(request: &Value, field: &str, allowed: &[&str]) -> Result<Vec<String>, String> {
    let list = request.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
    list.iter()
        .map(|d| {
            let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
            if allowed.contains(&name) {
                Ok(name.to_owned())
            } else {
                Err(format!("Field {name} is not a valid {}.", &field[..field.len() - 1]))
            }
        })
        .collect()
}

/// The events a `dimensionFilter` on `eventName` keeps (`None`: all).
fn event_filter(request: &Value) -> Result<Option<HashSet<String>>, String> {
    let Some(filter) = request.get("dimensionFilter") else { return Ok(None) };
    let f = filter.get("filter").ok_or("the simulator supports a single dimensionFilter.filter")?;
    if f.get("fieldName").and_then(Value::as_str) != Some("eventName") {
        return Err("the simulator filters on eventName only".into());
    }
    if let Some(values) = f.pointer("/inListFilter/values").and_then(Value::as_array) {
        return Ok(Some(values.iter().filter_map(Value::as_str).map(str::to_owned).collect()));
    }
    match f.pointer("/stringFilter/value").and_then(Value::as_str) {
        Some(v) => Ok(Some(HashSet::from([v.to_owned()]))),
        None => Err("the simulator supports inListFilter and stringFilter".into()),
    }
}

fn report(state: &Ga4SimState, request: &Value) -> Result<Value, String> {
    let dims = names(request, "dimensions", &DIMENSIONS)?;
    let metrics = names(request, "metrics", &METRICS)?;
    let range = request.pointer("/dateRanges/0").ok_or("dateRanges is required")?;
    let day = |key: &str| {
        let text = range.get(key).and_then(Value::as_str).unwrap_or_default();
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("Invalid {key}: '{text}' is not YYYY-MM-DD."))
    };
    let (first, last) = (day("startDate")?, day("endDate")?);
    if last < first {
        return Err("endDate is before startDate.".into());
    }
    let limit = int64(request.get("limit"), "limit")?.unwrap_or(10_000);
    let offset = int64(request.get("offset"), "offset")?.unwrap_or(0);
    if limit <= 0 || offset < 0 {
        return Err("limit must be positive and offset not negative.".into());
    }
    let (limit, offset) = ((limit as u64).min(MAX_LIMIT), offset as u64);
    let events = event_filter(request)?;
    // (date, transactionId, eventName) → (revenue, events, transactions), from what /mp/collect took.
    let mut counted: BTreeMap<(String, String, String), (f64, u64, u64)> = BTreeMap::new();
    let api = state.data_api();
    for e in state.received_events() {
        let micros = e.timestamp_micros.unwrap_or_else(|| e.received_at.timestamp_micros());
        let Some(at) = Utc.timestamp_micros(micros).single() else { continue };
        let on = at.date_naive();
        if on < first || on > last || events.as_ref().is_some_and(|ev| !ev.contains(&e.name)) {
            continue;
        }
        let txn = match e.params.get("transaction_id") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "(not set)".to_owned(),
        };
        if api.dropped.contains(&txn) {
            continue;
        }
        let times = if api.doubled.contains(&txn) { 2 } else { 1 };
        let purchase = e.name == "purchase";
        let value = if purchase { e.params.get("value").and_then(Value::as_f64).unwrap_or(0.0) } else { 0.0 };
        let c = counted.entry((on.format("%Y%m%d").to_string(), txn, e.name.clone())).or_default();
        c.0 += value * times as f64;
        c.1 += times;
        c.2 += if purchase { times } else { 0 };
    }
    drop(api);
    let row_count = counted.len() as u64;
    let rows: Vec<Value> = counted
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(usize::MAX))
        .map(|((date, txn, event), (revenue, count, transactions))| {
            let dim = |d: &String| match d.as_str() {
                "transactionId" => txn.clone(),
                "date" => date.clone(),
                _ => event.clone(),
            };
            let metric = |m: &String| match m.as_str() {
                "purchaseRevenue" => format!("{revenue}"),
                "eventCount" => count.to_string(),
                _ => transactions.to_string(),
            };
            json!({
                "dimensionValues": dims.iter().map(|d| json!({"value": dim(d)})).collect::<Vec<_>>(),
                "metricValues": metrics.iter().map(|m| json!({"value": metric(m)})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut answer = json!({
        "dimensionHeaders": dims.iter().map(|d| json!({"name": d})).collect::<Vec<_>>(),
        "metricHeaders": metrics.iter().map(|m| json!({
            "name": m,
            "type": if m == "purchaseRevenue" { "TYPE_CURRENCY" } else { "TYPE_INTEGER" },
        })).collect::<Vec<_>>(),
        "metadata": {"currencyCode": "EUR", "timeZone": "Etc/UTC"},
        "kind": "analyticsData#runReport",
    });
    // GA4 leaves out `rows` and `rowCount` when nothing matches.
    if row_count > 0 {
        answer["rowCount"] = json!(row_count);
    }
    if !rows.is_empty() {
        answer["rows"] = Value::Array(rows);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests;
