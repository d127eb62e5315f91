//! The API endpoints of the simulator: `events:ingest` and `requestStatus:retrieve`, behind
//! the same gate (injected faults, bearer token, per-minute quota).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

use super::state::{Data, StatusEntry};
use super::{
    rpc_error, status_name, validate, Conversion, Endpoint, GoogleAdsSimState, Processing, ReceivedEvent,
    ReceivedRequest,
};
use crate::sim::Fault;

/// The bearer token of a request, if it is one this simulator issued and it has not expired.
fn authorised(state: &GoogleAdsSimState, headers: &HeaderMap) -> bool {
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    token.is_some_and(|t| state.data().tokens.get(t).is_some_and(|&expires| expires > Utc::now()))
}

/// Faults, authentication and quota, common to the API endpoints: `Some` answers instead.
fn gate(state: &GoogleAdsSimState, headers: &HeaderMap) -> (Option<Response>, Option<std::time::Duration>) {
    match state.inner.faults.take() {
        Some(Fault::Status(code)) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let http = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (Some(rpc_error(http, status_name(code), "injected fault", None, &[])), None);
        }
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            state.inner.faulted.fetch_add(1, Ordering::Relaxed);
            let mut r = rpc_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "injected fault",
                Some("RESOURCE_EXHAUSTED"),
                &[],
            );
            if let Ok(v) = retry_after_secs.to_string().parse() {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return (Some(r), None);
        }
        Some(Fault::Delay(d)) => return (None, Some(d)),
        None => {}
    }
    if !authorised(state, headers) {
        let message = "Request had invalid authentication credentials. Expected OAuth 2 access token.";
        return (Some(rpc_error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message, None, &[])), None);
    }
    if !state.within_quota() {
        let message = "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'.";
        return (
            Some(rpc_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                message,
                Some("RESOURCE_EXHAUSTED"),
                &[],
            )),
            None,
        );
    }
    (None, None)
}

pub(super) async fn ingest(State(state): State<GoogleAdsSimState>, headers: HeaderMap, body: Bytes) -> Response {
    let now = Utc::now();
    let (early, delay) = gate(&state, &headers);
    let parsed = serde_json::from_slice::<Value>(&body).ok();
    let (response, request_id) = match early {
        Some(r) => (r, None),
        None => match parsed.as_ref().and_then(Value::as_object) {
            None => {
                let message = "Invalid JSON payload received.";
                (rpc_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, Some("INVALID_ARGUMENT"), &[]), None)
            }
            Some(request) => {
                let violations = validate(request);
                if let Some(account) = state.unreachable_account(request) {
                    let message = format!("The caller does not have permission to access operating account {account}.");
                    let reason = Some("PERMISSION_DENIED");
                    (rpc_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", &message, reason, &[]), None)
                } else if !violations.is_empty() {
                    let message = "There was a problem with the request.";
                    let r = rpc_error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_ARGUMENT",
                        message,
                        Some("INVALID_ARGUMENT"),
                        &violations,
                    );
                    (r, None)
                } else if request.get("validateOnly").and_then(Value::as_bool) == Some(true) {
                    ((StatusCode::OK, Json(json!({}))).into_response(), None)
                } else {
                    let id = accept(&state, request, now);
                    ((StatusCode::OK, Json(json!({"requestId": id}))).into_response(), Some(id))
                }
            }
        },
    };
    let status = response.status().as_u16();
    let received = ReceivedRequest {
        endpoint: Endpoint::Ingest,
        body: parsed.map(Arc::new),
        status,
        request_id,
        received_at: now,
    };
    state.record(&mut state.data(), received);
    if let Some(d) = delay {
        // Processed already: only the answer is late.
        tokio::time::sleep(d).await;
    }
    response
}

/// Keeps a valid request's events, updates the conversions, and returns its new request id.
fn accept(state: &GoogleAdsSimState, request: &serde_json::Map<String, Value>, now: chrono::DateTime<Utc>) -> String {
    let destinations = request.get("destinations").and_then(Value::as_array).cloned().unwrap_or_default();
    let events = request.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
    let text = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let mut data = state.data();
    data.next_id += 1;
    let request_id = format!("sim-{:06}-{}", data.next_id, hex::encode(rand::random::<[u8; 4]>()));
    let mut counts = vec![0i64; destinations.len()];
    let mut duplicates = 0i64;
    for e in &events {
        let refs: Vec<&str> = e
            .get("destinationReferences")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (k, d) in destinations.iter().enumerate() {
            let reference = d.get("reference").and_then(Value::as_str).unwrap_or_default();
            if !refs.is_empty() && !refs.contains(&reference) {
                continue;
            }
            counts[k] += 1;
            let action = text(d, "/productDestinationId").unwrap_or_default();
            let transaction_id = text(e, "/transactionId").filter(|t| !t.is_empty());
            let received = ReceivedEvent {
                request_id: request_id.clone(),
                conversion_action: action.clone(),
                customer_id: text(d, "/operatingAccount/accountId").unwrap_or_default(),
                login_customer_id: text(d, "/loginAccount/accountId"),
                transaction_id: transaction_id.clone(),
                event: e.clone(),
                received_at: now,
            };
            if !state.inner.not_recording.load(Ordering::Relaxed) {
                data.events.push(received);
            }
            state.inner.event_count.fetch_add(1, Ordering::Relaxed);
            duplicates += i64::from(!keep_conversion(&mut data, action, transaction_id, e));
        }
    }
    let mut outcome = state.processing();
    if duplicates > 0 && outcome == Processing::Success {
        let reasons = vec![("DUPLICATE_TRANSACTION_ID".to_owned(), duplicates)];
        let all: i64 = counts.iter().sum();
        outcome = if duplicates == all { Processing::Failed(reasons) } else { Processing::PartialSuccess(reasons) };
    }
    let entry = StatusEntry {
        destinations: destinations.into_iter().zip(counts).collect(),
        polls: 0,
        processing_polls: state.inner.processing_polls.load(Ordering::Relaxed),
        outcome,
    };
    data.statuses.insert(request_id.clone(), entry);
    state.inner.accepted.fetch_add(1, Ordering::Relaxed);
    request_id
}

/// Adjustment semantics: the same `transactionId` in the same conversion action overwrites value
/// and currency, and adds user data only if the conversion had none; anything else is new.
///
/// Returns `false` for a duplicate: another event restating exactly the value and currency the
/// conversion already has is refused as `DUPLICATE_TRANSACTION_ID` in the request's processing
/// status (what the issue "What is sent is right" observed for a second 0.00 restatement; the
/// adjustments guide itself only says value and currency are overwritten). A byte-identical
/// resend of the event that set the value is taken as the same event, not a duplicate.
fn keep_conversion(data: &mut Data, action: String, transaction_id: Option<String>, e: &Value) -> bool {
    let value = e.get("conversionValue").and_then(Value::as_f64);
    let currency = e.get("currency").and_then(Value::as_str).map(str::to_owned);
    let has_user_data = e.get("userData").is_some();
    let key = transaction_id.clone().map(|t| (action.clone(), t));
    match key.as_ref().and_then(|k| data.conversion_index.get(k)).copied() {
        Some(i) => {
            let c = &mut data.conversions[i];
            if c.last_event == *e {
                return true;
            }
            if value == c.value && (currency.is_none() || currency == c.currency) {
                c.duplicates += 1;
                return false;
            }
            c.adjustments += 1;
            c.last_event = e.clone();
            if value.is_some() {
                c.value = value;
            }
            if currency.is_some() {
                c.currency = currency;
            }
            c.has_user_data |= has_user_data;
        }
        None => {
            if let Some(key) = key {
                data.conversion_index.insert(key, data.conversions.len());
            }
            data.conversions.push(Conversion {
                conversion_action: action,
                transaction_id,
                value,
                currency,
                event_timestamp: e.get("eventTimestamp").and_then(Value::as_str).map(str::to_owned),
                has_user_data,
                adjustments: 0,
                duplicates: 0,
                last_event: e.clone(),
            });
        }
    }
    true
}

pub(super) async fn status(
    State(state): State<GoogleAdsSimState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = Utc::now();
    let (early, delay) = gate(&state, &headers);
    let response = match early {
        Some(r) => r,
        None => {
            let query = query.unwrap_or_default();
            let id = url::form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "requestId")
                .map(|(_, v)| v.into_owned());
            let mut data = state.data();
            match id.and_then(|id| data.statuses.get_mut(&id)) {
                None => rpc_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "The request ID is not valid.",
                    Some("INVALID_REQUEST_ID"),
                    &[],
                ),
                Some(entry) => {
                    entry.polls += 1;
                    (StatusCode::OK, Json(status_answer(entry))).into_response()
                }
            }
        }
    };
    let received = ReceivedRequest {
        endpoint: Endpoint::Status,
        body: None,
        status: response.status().as_u16(),
        request_id: None,
        received_at: now,
    };
    state.record(&mut state.data(), received);
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    response
}

fn status_answer(entry: &StatusEntry) -> Value {
    let counts = |reasons: &[(String, i64)]| -> Vec<Value> {
        reasons
            .iter()
            .map(|(reason, n)| {
                let reason = if reason.starts_with("PROCESSING_") {
                    reason.clone()
                } else {
                    format!("PROCESSING_ERROR_REASON_{reason}")
                };
                json!({"recordCount": n.to_string(), "reason": reason})
            })
            .collect()
    };
    let list: Vec<Value> = entry
        .destinations
        .iter()
        .map(|(destination, records)| {
            let mut d =
                json!({"destination": destination, "eventsIngestionStatus": {"recordCount": records.to_string()}});
            let (state, errors) = if entry.polls <= entry.processing_polls {
                ("PROCESSING", None)
            } else {
                match &entry.outcome {
                    Processing::Success => ("SUCCESS", None),
                    Processing::PartialSuccess(r) => ("PARTIAL_SUCCESS", Some(counts(r))),
                    Processing::Failed(r) => ("FAILED", Some(counts(r))),
                }
            };
            d["requestStatus"] = state.into();
            if let Some(errors) = errors {
                d["errorInfo"] = json!({"errorCounts": errors});
            }
            d
        })
        .collect();
    json!({"requestStatusPerDestination": list})
}
