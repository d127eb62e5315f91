//! Handling one `POST /rest/conversionEvents`: faults, the gates (token, version, quota,
//! protocol), then a single create or a `BATCH_CREATE` judged by [`super::validate`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::validate::{schema, values};
use super::{
    lock, LinkedinSimState, ReceivedConversion, ReceivedRequest, RuleAccess, DEFAULT_MAX_BATCH, DEFAULT_OLDEST_VERSION,
};
use crate::sim::Fault;

/// LinkedIn's error body.
fn error(status: StatusCode, service_error_code: i64, message: &str) -> Response {
    let body = json!({"message": message, "serviceErrorCode": service_error_code, "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

pub(super) async fn conversion_events(
    State(state): State<LinkedinSimState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = state.inner.faults.take();
    match fault {
        Some(Fault::Status(code)) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, 0, "injected fault");
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, 101, "rate limited (injected fault)");
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.into());
            return response;
        }
        Some(Fault::Delay(_)) | None => {}
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut request = ReceivedRequest {
        authorization: header("authorization"),
        linkedin_version: header("linkedin-version"),
        protocol_version: header("x-restli-protocol-version"),
        method: header("x-restli-method"),
        body: None,
        received_at: Utc::now(),
        status: 0,
        element_statuses: Vec::new(),
    };
    let response = process(&state, &mut request, &body);
    request.status = response.status().as_u16();
    if state.recording() {
        lock(&state.inner.requests).push(request);
    }
    if let Some(Fault::Delay(delay)) = fault {
        // Processed already: only the answer is late.
        tokio::time::sleep(delay).await;
    }
    response
}

/// `GET /rest/conversions/{id}`: a conversion rule, as the token sees it. Not a conversion.
pub(super) async fn conversion_rule(
    State(state): State<LinkedinSimState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request = ReceivedRequest {
        authorization: header("authorization"),
        linkedin_version: header("linkedin-version"),
        protocol_version: header("x-restli-protocol-version"),
        method: header("x-restli-method"),
        body: None,
        received_at: Utc::now(),
        status: 0,
        element_statuses: Vec::new(),
    };
    if let Some(refusal) = gate(&state, &request) {
        return refusal;
    }
    let access = match &state.settings().rules {
        None if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => Some(RuleAccess::Enabled),
        None => None,
        Some(rules) => rules.get(&id).copied(),
    };
    match access {
        None => error(StatusCode::NOT_FOUND, 404, &format!("Not found: conversion {id}")),
        Some(RuleAccess::Forbidden) => {
            error(StatusCode::FORBIDDEN, 100, "Not enough permissions to access: conversions.GET.20240101")
        }
        Some(access) => {
            let body = json!({"id": id.parse::<i64>().unwrap_or_default(), "name": format!("Rule {id}"),
                "enabled": access == RuleAccess::Enabled, "conversionMethod": "CONVERSIONS_API",
                "account": "urn:li:sponsoredAccount:12345"});
            (StatusCode::OK, axum::Json(body)).into_response()
        }
    }
}

fn process(state: &LinkedinSimState, request: &mut ReceivedRequest, body: &[u8]) -> Response {
    if let Some(refusal) = gate(state, request) {
        return refusal;
    }
    state.inner.processed.fetch_add(1, Ordering::Relaxed);
    if request.protocol_version.as_deref() != Some("2.0.0") {
        return error(StatusCode::BAD_REQUEST, 100, "X-Restli-Protocol-Version 2.0.0 is required");
    }
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, 100, "Unable to parse the request body as JSON");
    };
    let parsed = Arc::new(parsed);
    request.body = Some(parsed.clone());
    let now = Utc::now();
    match request.method.as_deref() {
        None => single_create(state, &parsed, now),
        Some(m) if m.eq_ignore_ascii_case("BATCH_CREATE") => batch_create(state, request, &parsed, now),
        Some(m) => error(StatusCode::BAD_REQUEST, 100, &format!("X-RestLi-Method {m} is not supported here")),
    }
}

/// Authentication, version and quota: a refusal, or `None` to go on.
fn gate(state: &LinkedinSimState, request: &ReceivedRequest) -> Option<Response> {
    let mut settings = state.settings();
    let bearer = request.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
    match bearer {
        None | Some("") => return Some(error(StatusCode::UNAUTHORIZED, 65604, "Empty oauth2 access token")),
        Some(_) if settings.token_expired => {
            return Some(error(StatusCode::UNAUTHORIZED, 65601, "The token used in the request has expired"))
        }
        Some(t) if settings.token.as_deref().is_some_and(|expected| expected != t) => {
            return Some(error(StatusCode::UNAUTHORIZED, 65600, "Invalid access token"))
        }
        Some(_) => {}
    }
    let Some(version) = request.linkedin_version.as_deref() else {
        let message = "A version must be present. Please specify a version by adding the LinkedIn-Version header.";
        return Some(error(StatusCode::BAD_REQUEST, 100, message));
    };
    let oldest = settings.oldest_version.as_deref().unwrap_or(DEFAULT_OLDEST_VERSION);
    let well_formed = version.len() == 6 && version.bytes().all(|b| b.is_ascii_digit());
    // Equal-length digit strings compare as their numbers.
    if !well_formed || !(1..=12).contains(&version[4..].parse::<u32>().unwrap_or(0)) || version < oldest {
        let message = format!("Requested version {version} is not active");
        return Some(error(StatusCode::UPGRADE_REQUIRED, 100, &message));
    }
    match settings.quota {
        Some(0) => {
            state.inner.throttled.fetch_add(1, Ordering::Relaxed);
            let message = "Resource level throttle limit for calls to this resource is reached.";
            return Some(error(StatusCode::TOO_MANY_REQUESTS, 101, message));
        }
        Some(ref mut n) => *n -= 1,
        None => {}
    }
    None
}

fn single_create(state: &LinkedinSimState, element: &Value, now: DateTime<Utc>) -> Response {
    let mut violations = schema(element);
    if violations.is_empty() {
        violations = values(element, now);
    }
    if !violations.is_empty() {
        let lines: Vec<String> = violations.iter().map(|v| format!("ERROR :: {} :: {}", v.path, v.message)).collect();
        return error(StatusCode::UNPROCESSABLE_ENTITY, 100, &lines.join("\n"));
    }
    if let Some(status) = take_element_fault(state) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return error(status, 0, "injected element fault");
    }
    keep(state, element, now);
    StatusCode::CREATED.into_response()
}

fn batch_create(state: &LinkedinSimState, request: &mut ReceivedRequest, body: &Value, now: DateTime<Utc>) -> Response {
    let Some(elements) = body.get("elements").and_then(Value::as_array).filter(|e| !e.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, 100, "A BATCH_CREATE needs a non-empty elements array");
    };
    let max = state.settings().max_batch.unwrap_or(DEFAULT_MAX_BATCH);
    if elements.len() > max {
        let message = format!("A batch holds at most {max} elements (has {})", elements.len());
        return error(StatusCode::BAD_REQUEST, 100, &message);
    }
    let mut lines = Vec::new();
    for (i, e) in elements.iter().enumerate() {
        lines.extend(schema(e).into_iter().map(|v| format!("ERROR :: /elements/{i}{} :: {}", v.path, v.message)));
    }
    if !lines.is_empty() {
        let message = format!("Input field validation failure, reason:\n{}", lines.join("\n"));
        return error(StatusCode::UNPROCESSABLE_ENTITY, 100, &message);
    }
    let answers: Vec<Value> = elements
        .iter()
        .map(|e| {
            let violations = values(e, now);
            let (status, message) = if !violations.is_empty() {
                let text: Vec<String> = violations.iter().map(|v| format!("{} :: {}", v.path, v.message)).collect();
                (422, text.join("; "))
            } else if let Some(status) = take_element_fault(state) {
                (status, "injected element fault".to_owned())
            } else {
                keep(state, e, now);
                return json!({"status": 201});
            };
            json!({"status": status, "error": {"message": message, "serviceErrorCode": 100, "status": status}})
        })
        .collect();
    request.element_statuses = answers.iter().map(|a| a["status"].as_u64().unwrap_or(0) as u16).collect();
    (StatusCode::OK, axum::Json(json!({ "elements": answers }))).into_response()
}

fn take_element_fault(state: &LinkedinSimState) -> Option<u16> {
    let mut settings = state.settings();
    let (n, status) = settings.element_fault?;
    settings.element_fault = (n > 1).then_some((n - 1, status));
    Some(status)
}

fn keep(state: &LinkedinSimState, element: &Value, now: DateTime<Utc>) {
    state.inner.accepted.fetch_add(1, Ordering::Relaxed);
    if !state.recording() {
        return;
    }
    let text = |pointer: &str| element.pointer(pointer).and_then(Value::as_str).map(str::to_owned);
    let user_ids = element.pointer("/user/userIds").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let conversion = ReceivedConversion {
        conversion: text("/conversion").unwrap_or_default(),
        conversion_happened_at: element.pointer("/conversionHappenedAt").and_then(Value::as_i64).unwrap_or_default(),
        event_id: text("/eventId"),
        value: element.get("conversionValue").cloned(),
        user_ids: user_ids
            .iter()
            .map(|id| {
                let field = |k: &str| id.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                (field("idType"), field("idValue"))
            })
            .collect(),
        user_info: element.pointer("/user/userInfo").cloned(),
        element: element.clone(),
        received_at: now,
    };
    lock(&state.inner.conversions).push(conversion);
}
