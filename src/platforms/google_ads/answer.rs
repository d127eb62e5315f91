//! Reading the Data Manager API's answers: `{requestId, fieldWarnings}` on success, a
//! `google.rpc.Status` otherwise (developers.google.com/data-manager/api/devguides/concepts/
//! understand-errors; cloud.google.com/apis/design/errors). docs/platforms.md §Google Ads "Answers".

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::core::RetryAfter;
use crate::delivery::http::Exchange;

/// The least wait after `RESOURCE_EXHAUSTED`: the quota is per minute.
pub const SLOW_DOWN: Duration = Duration::from_secs(60);

/// The `requestId` of a successful `events:ingest` answer.
pub fn request_id(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default, rename = "requestId")]
        request_id: Option<String>,
    }
    serde_json::from_slice::<Answer>(body).ok()?.request_id.filter(|id| !id.is_empty())
}

/// One entry of `BadRequest.fieldViolations` or of `fieldWarnings`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FieldViolation {
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub reason: String,
}

impl FieldViolation {
    /// `field: description [REASON]`, with the field's `events[N]` prefix replaced by `event`
    /// (N is a position in one request, meaningless in the ledger).
    pub fn message(&self) -> String {
        let field = match event_index(&self.field) {
            Some(_) => match self.field.split_once(']') {
                Some((_, rest)) => format!("event{rest}"),
                None => self.field.clone(),
            },
            None => self.field.clone(),
        };
        let mut text = format!("{field}: {}", self.description);
        if !self.reason.is_empty() {
            text.push_str(&format!(" [{}]", self.reason));
        }
        text
    }
}

/// A `google.rpc.Status` error body.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RpcStatus {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub details: Vec<Value>,
}

impl RpcStatus {
    /// Reads `{"error": {...}}`; `None` if the body is not one.
    pub fn parse(body: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Envelope {
            error: RpcStatus,
        }
        serde_json::from_slice::<Envelope>(body).ok().map(|e| e.error)
    }

    /// Every `BadRequest.fieldViolations[]` entry.
    pub fn field_violations(&self) -> Vec<FieldViolation> {
        self.details
            .iter()
            .filter(|d| type_is(d, "google.rpc.BadRequest"))
            .filter_map(|d| d.get("fieldViolations").and_then(Value::as_array))
            .flatten()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    /// `ErrorInfo.reason`, if given.
    pub fn reason(&self) -> Option<String> {
        self.details
            .iter()
            .filter(|d| type_is(d, "google.rpc.ErrorInfo"))
            .find_map(|d| d.get("reason").and_then(Value::as_str).map(str::to_owned))
    }

    /// `STATUS (REASON): message`, bounded.
    pub fn summary(&self) -> String {
        let mut text = if self.status.is_empty() { format!("code {}", self.code) } else { self.status.clone() };
        if let Some(reason) = self.reason().filter(|r| r != &self.status) {
            text.push_str(&format!(" ({reason})"));
        }
        if !self.message.is_empty() {
            let message: String = self.message.chars().take(300).collect();
            text.push_str(&format!(": {message}"));
        }
        text
    }
}

fn type_is(detail: &Value, name: &str) -> bool {
    detail.get("@type").and_then(Value::as_str).is_some_and(|t| t.ends_with(name))
}

/// `N` of a field path starting `events[N]`.
pub fn event_index(field: &str) -> Option<usize> {
    indexed(field, "events[")
}

/// `K` of a field path starting `destinations[K]`.
pub fn destination_index(field: &str) -> Option<usize> {
    indexed(field, "destinations[")
}

fn indexed(field: &str, prefix: &str) -> Option<usize> {
    let rest = field.strip_prefix(prefix)?;
    let (n, _) = rest.split_once(']')?;
    n.parse().ok()
}

/// What an `events:ingest` answer means for the events of the request.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestVerdict {
    /// 2xx: accepted for processing (not yet processed). `warnings` by event position.
    Accepted { request_id: Option<String>, warnings: BTreeMap<usize, Vec<String>> },
    /// 401: the token is no good.
    Unauthenticated(String),
    /// 400 naming events: these positions fail, with their messages; the others may be resent.
    Isolate(BTreeMap<usize, Vec<String>>),
    /// A permanent refusal of the whole request.
    RejectAll(Vec<String>),
    /// A refusal only a person can fix (access, account, terms): retried after they do.
    Halt(String),
    /// Try again later; `RetryAfter::SlowDown` also holds the destination's pace.
    Retry { reason: String, after: RetryAfter },
}

/// Classifies one answer to a request holding `count` events whose conversion actions are
/// `actions[i]` (for violations naming `destinations[K]`, which is `destination_order[K]`).
pub fn read_ingest(ex: &Exchange, actions: &[&str], destination_order: &[&str]) -> RequestVerdict {
    let count = actions.len();
    let status = match ex.record.status {
        None if ex.timed_out => return retry("timeout", ex),
        None => {
            let reason = format!("network error: {}", ex.record.error.as_deref().unwrap_or("no answer"));
            return RequestVerdict::Retry { reason, after: RetryAfter::from_header(ex.retry_after) };
        }
        Some(s) => s,
    };
    if (200..300).contains(&status) {
        return RequestVerdict::Accepted { request_id: request_id(&ex.body), warnings: warnings(&ex.body, count) };
    }
    let rpc = RpcStatus::parse(&ex.body).unwrap_or_default();
    let what = format!("HTTP {status} {}", rpc.summary()).trim_end().to_owned();
    match (status, rpc.status.as_str()) {
        (429, _) | (_, "RESOURCE_EXHAUSTED") => RequestVerdict::Retry {
            reason: format!("{what}: slowing down"),
            after: RetryAfter::SlowDown(ex.retry_after.unwrap_or_default().max(SLOW_DOWN)),
        },
        (401, _) | (_, "UNAUTHENTICATED") => RequestVerdict::Unauthenticated(what),
        (403, _) | (404, _) | (_, "PERMISSION_DENIED") | (_, "FAILED_PRECONDITION") => RequestVerdict::Halt(what),
        (400, _) | (_, "INVALID_ARGUMENT") => isolate(&rpc, actions, destination_order, what),
        // ABORTED (409) and every 5xx (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL) pass.
        (408 | 409, _) | (500..=599, _) => retry(&what, ex),
        (400..=499, _) => RequestVerdict::RejectAll(vec![what]),
        _ => retry(&format!("unexpected {what}"), ex),
    }
}

fn retry(reason: &str, ex: &Exchange) -> RequestVerdict {
    RequestVerdict::Retry { reason: reason.to_owned(), after: RetryAfter::from_header(ex.retry_after) }
}

/// Fast-fail: the request failed for the events its violations name (directly, or through their
/// destination). Those are refused; if none is named, the request as a whole is.
fn isolate(rpc: &RpcStatus, actions: &[&str], destination_order: &[&str], what: String) -> RequestVerdict {
    let mut named: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for v in rpc.field_violations() {
        if let Some(n) = event_index(&v.field).filter(|&n| n < actions.len()) {
            named.entry(n).or_default().push(v.message());
        } else if let Some(action) = destination_index(&v.field).and_then(|k| destination_order.get(k)) {
            for (n, _) in actions.iter().enumerate().filter(|(_, a)| *a == action) {
                named.entry(n).or_default().push(v.message());
            }
        }
    }
    if named.is_empty() {
        let mut messages = vec![what];
        messages.extend(rpc.field_violations().iter().map(FieldViolation::message));
        RequestVerdict::RejectAll(messages)
    } else {
        RequestVerdict::Isolate(named)
    }
}

/// `fieldWarnings[]` of a success, by event position (a warning about no event is dropped).
fn warnings(body: &[u8], count: usize) -> BTreeMap<usize, Vec<String>> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(default, rename = "fieldWarnings")]
        field_warnings: Vec<FieldViolation>,
    }
    let mut out: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        for w in answer.field_warnings {
            if let Some(n) = event_index(&w.field).filter(|&n| n < count) {
                out.entry(n).or_default().push(w.message());
            }
        }
    }
    out
}
