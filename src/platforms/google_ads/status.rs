//! What Google made of an accepted request: `GET /v1/requestStatus:retrieve?requestId=…`
//! (about 30 minutes after the send) answers per destination — per conversion action —
//! `SUCCESS | PROCESSING | PARTIAL_SUCCESS | FAILED` with record counts and error counts by
//! reason. Proto: `google/ads/datamanager/v1/{request_status_per_destination,processing_errors}
//! .proto`; devguide "diagnostics". The counts are per destination, not per event: a partial
//! success does not say which events failed.

use std::fmt;
use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use serde_json::Value;

use super::answer::{RpcStatus, SLOW_DOWN};
use super::GoogleAds;
use crate::core::pii::sha256_hex;
use crate::core::{FollowUp, RequestRecord};
use crate::delivery::http as exchange;
use crate::platforms::google_auth::TokenError;

/// `RequestStatusPerDestination.RequestStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessingState {
    Success,
    Processing,
    PartialSuccess,
    Failed,
    /// `REQUEST_STATUS_UNKNOWN`, or a value this code does not know.
    Unknown,
}

impl ProcessingState {
    pub fn parse(s: &str) -> Self {
        match s {
            "SUCCESS" => Self::Success,
            "PROCESSING" => Self::Processing,
            "PARTIAL_SUCCESS" => Self::PartialSuccess,
            "FAILED" => Self::Failed,
            _ => Self::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::Processing => "PROCESSING",
            Self::PartialSuccess => "PARTIAL_SUCCESS",
            Self::Failed => "FAILED",
            Self::Unknown => "REQUEST_STATUS_UNKNOWN",
        }
    }

    /// Whether asking again can change the answer.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::PartialSuccess | Self::Failed)
    }
}

/// Records counted under one reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReasonCount {
    /// Google's name, e.g. `PROCESSING_ERROR_REASON_EVENT_TOO_OLD`.
    pub reason: String,
    pub record_count: i64,
}

impl ReasonCount {
    /// The reason without its enum prefix: `EVENT_TOO_OLD`.
    pub fn short(&self) -> &str {
        ["PROCESSING_ERROR_REASON_", "PROCESSING_WARNING_REASON_", "PROCESSING_ERROR_"]
            .iter()
            .find_map(|p| self.reason.strip_prefix(p))
            .unwrap_or(&self.reason)
    }
}

/// The processing status of one destination (conversion action) of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DestinationStatus {
    /// `destination.productDestinationId`: the conversion action, i.e. the routes' `event`.
    pub conversion_action: Option<String>,
    pub state: ProcessingState,
    /// `eventsIngestionStatus.recordCount`: events sent to this destination in the request.
    pub record_count: Option<i64>,
    pub errors: Vec<ReasonCount>,
    pub warnings: Vec<ReasonCount>,
}

impl fmt::Display for DestinationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.conversion_action.as_deref().unwrap_or("?"), self.state.as_str())?;
        if let Some(n) = self.record_count {
            write!(f, " ({n} records)")?;
        }
        for (label, list) in [("errors", &self.errors), ("warnings", &self.warnings)] {
            if !list.is_empty() {
                let items: Vec<String> = list.iter().map(|r| format!("{} ×{}", r.short(), r.record_count)).collect();
                write!(f, "; {label}: {}", items.join(", "))?;
            }
        }
        Ok(())
    }
}

/// Why a status could not be had.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StatusError {
    /// Ask again later.
    #[error("{reason}")]
    Retry { reason: String, retry_after: Option<Duration> },
    /// Credentials or access need a person: what the worker would halt the destination for.
    #[error("halt: {0}")]
    Halt(String),
    /// Google will not answer for this request id (unknown, or a `validateOnly` request).
    #[error("{0}")]
    Refused(String),
}

/// The result of one status check, with every request it made (to record in the ledger).
#[derive(Clone, Debug, PartialEq)]
pub struct StatusCheck {
    pub requests: Vec<RequestRecord>,
    pub result: Result<Vec<DestinationStatus>, StatusError>,
}

impl StatusCheck {
    /// Whether every destination has its final answer.
    pub fn is_final(&self) -> bool {
        self.result.as_ref().is_ok_and(|d| !d.is_empty() && d.iter().all(|d| d.state.is_final()))
    }

    /// One line for the ledger: each destination's state and counts, or the error.
    pub fn summary(&self) -> String {
        match &self.result {
            Ok(list) => list.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | "),
            Err(e) => e.to_string(),
        }
    }
}

/// Reads a `RetrieveRequestStatusResponse`. int64 fields come as JSON strings (proto3 JSON) or,
/// from lenient servers, as numbers; both are read.
pub fn parse_status(body: &[u8]) -> Result<Vec<DestinationStatus>, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|_| "the status answer is not JSON".to_owned())?;
    let list = match answer.get("requestStatusPerDestination") {
        Some(Value::Array(list)) => list.as_slice(),
        None => &[],
        Some(_) => return Err("requestStatusPerDestination is not a list".to_owned()),
    };
    Ok(list.iter().map(destination_status).collect())
}

fn destination_status(d: &Value) -> DestinationStatus {
    DestinationStatus {
        conversion_action: d.pointer("/destination/productDestinationId").and_then(Value::as_str).map(str::to_owned),
        state: ProcessingState::parse(d.get("requestStatus").and_then(Value::as_str).unwrap_or_default()),
        record_count: d.pointer("/eventsIngestionStatus/recordCount").and_then(int),
        errors: counts(d.pointer("/errorInfo/errorCounts")),
        warnings: counts(d.pointer("/warningInfo/warningCounts")),
    }
}

fn counts(list: Option<&Value>) -> Vec<ReasonCount> {
    list.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|c| ReasonCount {
                    reason: c.get("reason").and_then(Value::as_str).unwrap_or("UNSPECIFIED").to_owned(),
                    record_count: c.get("recordCount").and_then(int).unwrap_or(0),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl GoogleAds {
    /// Asks what Google made of an accepted request (`GET /v1/requestStatus:retrieve`). Every
    /// request made — a failed token grant included — is in the answer, for the ledger.
    pub async fn check_status(&self, request_id: &str) -> StatusCheck {
        let mut requests = Vec::new();
        let mut refreshed = false;
        loop {
            let bearer = match self.tokens.bearer((self.clock)(), &mut requests).await {
                Ok(b) => b,
                Err(e @ TokenError::Refused(_)) => {
                    return StatusCheck { requests, result: Err(StatusError::Halt(e.reason())) }
                }
                Err(e) => {
                    let error = StatusError::Retry { reason: e.reason(), retry_after: e.retry_after() };
                    return StatusCheck { requests, result: Err(error) };
                }
            };
            if let Err(wait) = self.pace.acquire().await {
                let error =
                    StatusError::Retry { reason: "slowing down (request quota)".into(), retry_after: Some(wait) };
                return StatusCheck { requests, result: Err(error) };
            }
            let mut url = self.status_url.clone();
            url.query_pairs_mut().append_pair("requestId", request_id);
            let request = self.client.get(url).header(AUTHORIZATION, bearer.header_value());
            let ex = exchange::send("requestStatus:retrieve", request, sha256_hex(b"")).await;
            let outcome = read_status_answer(&ex);
            requests.push(ex.record);
            match outcome {
                StatusAnswer::Unauthenticated if !refreshed => {
                    refreshed = true;
                    self.tokens.invalidate(&bearer).await;
                }
                StatusAnswer::Unauthenticated => {
                    let error = StatusError::Halt("Google refused a freshly issued access token".into());
                    return StatusCheck { requests, result: Err(error) };
                }
                StatusAnswer::Done(result) => {
                    if let Err(StatusError::Retry { retry_after: Some(wait), .. }) = &result {
                        if *wait >= SLOW_DOWN {
                            self.pace.hold(*wait);
                        }
                    }
                    return StatusCheck { requests, result };
                }
            }
        }
    }
}

enum StatusAnswer {
    Unauthenticated,
    Done(Result<Vec<DestinationStatus>, StatusError>),
}

fn read_status_answer(ex: &exchange::Exchange) -> StatusAnswer {
    let retry = |reason: String, retry_after| StatusAnswer::Done(Err(StatusError::Retry { reason, retry_after }));
    let status = match ex.record.status {
        None if ex.timed_out => return retry("timeout".into(), ex.retry_after),
        None => return retry(format!("network error: {}", ex.record.error.as_deref().unwrap_or("no answer")), None),
        Some(s) => s,
    };
    if (200..300).contains(&status) {
        return StatusAnswer::Done(
            parse_status(&ex.body).map_err(|e| StatusError::Retry { reason: e, retry_after: None }),
        );
    }
    let rpc = RpcStatus::parse(&ex.body).unwrap_or_default();
    let what = format!("HTTP {status} {}", rpc.summary()).trim_end().to_owned();
    match (status, rpc.status.as_str()) {
        (401, _) | (_, "UNAUTHENTICATED") => StatusAnswer::Unauthenticated,
        (429, _) | (_, "RESOURCE_EXHAUSTED") => {
            retry(format!("{what}: slowing down"), Some(ex.retry_after.unwrap_or_default().max(SLOW_DOWN)))
        }
        (403, _) | (_, "PERMISSION_DENIED") => StatusAnswer::Done(Err(StatusError::Halt(what))),
        (408 | 409, _) | (500..=599, _) => retry(what, ex.retry_after),
        (400..=499, _) => StatusAnswer::Done(Err(StatusError::Refused(what))),
        _ => retry(format!("unexpected {what}"), ex.retry_after),
    }
}

/// What a status check says about the request as a whole. Google counts per conversion
/// action, not per event: one action failing among several makes the request `Partial`. A request
/// id Google refuses to answer for (`INVALID_REQUEST_ID`, `NOT_FOUND`) will never be answered:
/// `Unconfirmed`, and the worker stops asking.
pub fn follow_up(check: &StatusCheck) -> FollowUp {
    let list = match &check.result {
        Ok(list) => list,
        Err(StatusError::Refused(e)) => return FollowUp::Unconfirmed(format!("Google does not know the request: {e}")),
        Err(e) => return FollowUp::Error(e.to_string()),
    };
    if list.is_empty() || list.iter().any(|d| !d.state.is_final()) {
        return FollowUp::NotYet;
    }
    if list.iter().all(|d| d.state == ProcessingState::Success) {
        return FollowUp::Accepted;
    }
    let messages: Vec<String> =
        list.iter().filter(|d| d.state != ProcessingState::Success).map(ToString::to_string).collect();
    if list.iter().all(|d| d.state == ProcessingState::Failed) {
        FollowUp::Failed { messages }
    } else {
        FollowUp::Partial { messages }
    }
}
