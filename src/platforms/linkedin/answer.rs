//! Reading LinkedIn's answers to a `BATCH_CREATE` into one verdict per element.
//!
//! A batch answers 200 `{"elements": [{"status": 201}, {"status": 422, "error": {...}}, …]}`,
//! one status per element in request order; a request refused as a whole answers
//! `{"message", "serviceErrorCode", "status"}` (learn.microsoft.com/linkedin/shared/api-guide/
//! concepts/error-handling; docs/platforms.md §LinkedIn). Per-element errors are read both in the
//! Rest.li shape (`error.message`) and flat (`message`).

use serde::Deserialize;
use serde_json::Value;

use crate::core::delivery::reason;
use crate::core::Outcome;
use crate::delivery::http::{Exchange, StatusClass};

pub const ACCEPTED_DETAIL: &str = "LinkedIn answered 201 for this conversion";
pub const UNREAD_DETAIL: &str = "LinkedIn answered 2xx without per-element statuses";
pub const NOT_PROCESSED: &str = "not processed: LinkedIn refused the batch for other conversions in it";

/// What became of one element of a request.
#[derive(Clone, Debug, PartialEq)]
pub enum ElementVerdict {
    /// Settled by this answer.
    Final(Outcome),
    /// Refused only because another element of the request was at fault: send it again without them.
    Innocent,
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "serviceErrorCode")]
    service_error_code: Option<i64>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default, rename = "errorDetails")]
    error_details: Option<Value>,
}

#[derive(Deserialize)]
struct BatchAnswer {
    elements: Vec<ElementAnswer>,
}

#[derive(Deserialize)]
struct ElementAnswer {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

/// One verdict per element of a request of `count` elements.
pub fn read(exchange: &Exchange, count: usize) -> Vec<ElementVerdict> {
    let status = match exchange.status_class() {
        StatusClass::Success if exchange.record.error.is_some() => {
            // The status came, the body broke off: which elements were kept is unknown, and
            // LinkedIn dedupes a resend on `eventId`.
            return all(count, retry("the answer broke off before its per-element statuses", exchange));
        }
        StatusClass::Success => return read_elements(exchange, count),
        StatusClass::Retry { reason } => {
            // 429, 5xx, …: LinkedIn's message, when it sent one, says more than the status.
            let error: ErrorBody = serde_json::from_slice(&exchange.body).unwrap_or_default();
            let reason = match (exchange.record.status, &error.message) {
                (Some(status), Some(_)) => describe(status, &error, exchange),
                _ => reason,
            };
            return all(count, retry_with(reason, exchange));
        }
        StatusClass::Permanent { status } => status,
    };
    let error: ErrorBody = serde_json::from_slice(&exchange.body).unwrap_or_default();
    let text = describe(status, &error, exchange);
    match status {
        401 => all(count, halt(format!("LinkedIn refused the access token ({text})"))),
        426 => all(count, halt(format!("the configured linkedin_version is not active ({text}); raise it"))),
        413 => all(count, retry_with(format!("{text}; lower batch_size"), exchange)),
        400 | 422 => by_element(status, &error, &text, count),
        _ => all(count, rejected(text)),
    }
}

fn read_elements(exchange: &Exchange, count: usize) -> Vec<ElementVerdict> {
    let Ok(answer) = serde_json::from_slice::<BatchAnswer>(&exchange.body) else {
        let detail = format!("{UNREAD_DETAIL} (HTTP {})", exchange.record.status.unwrap_or_default());
        return all(count, Outcome::Delivered { accepted: false, detail: Some(detail) });
    };
    (0..count)
        .map(|i| {
            let Some(e) = answer.elements.get(i) else {
                return ElementVerdict::Final(retry("LinkedIn gave no status for this conversion", exchange));
            };
            let error = e.error.as_ref();
            let message = error.and_then(|er| er.message.clone()).or_else(|| e.message.clone()).unwrap_or_default();
            let code = error.and_then(|er| er.service_error_code).map(|c| format!(", serviceErrorCode {c}"));
            let text = format!("element HTTP {}{}: {message}", e.status.unwrap_or_default(), code.unwrap_or_default());
            ElementVerdict::Final(match e.status {
                Some(s) if (200..300).contains(&s) => {
                    Outcome::Delivered { accepted: true, detail: Some(ACCEPTED_DETAIL.to_owned()) }
                }
                Some(s) if s == 408 || s == 429 || (500..600).contains(&s) => retry_with(text, exchange),
                Some(s) if (400..500).contains(&s) => {
                    Outcome::Rejected { reason: reason::PLATFORM_REJECTED.to_owned(), messages: vec![text] }
                }
                _ => retry_with(text, exchange),
            })
        })
        .collect()
}

/// A 400 or 422 for the whole request: when its messages name elements (`/elements/3/…`),
/// those are rejected with their own messages and the others are innocent; otherwise all are
/// rejected with the whole message.
fn by_element(status: u16, error: &ErrorBody, text: &str, count: usize) -> Vec<ElementVerdict> {
    let mut own: Vec<Vec<String>> = vec![Vec::new(); count];
    let mut named = false;
    for line in violations(error) {
        if let Some(n) = element_index(&line).filter(|&n| n < count) {
            own[n].push(format!("HTTP {status}: {}", line.trim()));
            named = true;
        }
    }
    if !named {
        return all(count, rejected(text.to_owned()));
    }
    own.into_iter()
        .map(|messages| {
            if messages.is_empty() {
                ElementVerdict::Innocent
            } else {
                ElementVerdict::Final(Outcome::Rejected { reason: reason::PLATFORM_REJECTED.to_owned(), messages })
            }
        })
        .collect()
}

/// Each violation an error lists: the lines of its message, and the field paths with their
/// descriptions from `errorDetails.inputErrors`, the newer shape of LinkedIn's validation errors.
fn violations(error: &ErrorBody) -> Vec<String> {
    let mut out: Vec<String> = error.message.iter().flat_map(|m| m.lines()).map(str::to_owned).collect();
    let inputs = error.error_details.as_ref().and_then(|d| d.get("inputErrors")).and_then(Value::as_array);
    for input in inputs.into_iter().flatten() {
        let path = input.pointer("/input/inputPath/fieldPath").and_then(Value::as_str).unwrap_or_default();
        let what = input.get("description").and_then(Value::as_str).unwrap_or_default();
        out.push(format!("{path} :: {what}"));
    }
    out
}

/// `N` of the first `/elements/N` or `elements[N]` in a text.
pub fn element_index(text: &str) -> Option<usize> {
    for (marker, end) in [("/elements/", '/'), ("elements[", ']')] {
        if let Some(at) = text.find(marker) {
            let rest = &text[at + marker.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let closed = rest[digits.len()..].chars().next().is_none_or(|c| c == end || c.is_whitespace());
            if !digits.is_empty() && closed {
                return digits.parse().ok();
            }
        }
    }
    None
}

/// `HTTP 422 (serviceErrorCode 100, code X): message`, or the excerpt when the body is not LinkedIn's.
fn describe(status: u16, error: &ErrorBody, exchange: &Exchange) -> String {
    let mut tags = Vec::new();
    if let Some(c) = error.service_error_code {
        tags.push(format!("serviceErrorCode {c}"));
    }
    if let Some(c) = &error.code {
        tags.push(format!("code {c}"));
    }
    let tags = if tags.is_empty() { String::new() } else { format!(" ({})", tags.join(", ")) };
    let message = error.message.clone().unwrap_or_else(|| exchange.record.response_excerpt.clone());
    format!("HTTP {status}{tags}: {message}")
}

fn all(count: usize, outcome: Outcome) -> Vec<ElementVerdict> {
    vec![ElementVerdict::Final(outcome); count]
}

/// The destination cannot work until a person acts: the worker stops it, and the deliveries
/// wait rather than end.
fn halt(why: String) -> Outcome {
    Outcome::Halt { reason: why }
}

fn rejected(message: String) -> Outcome {
    Outcome::Rejected { reason: reason::PLATFORM_REJECTED.to_owned(), messages: vec![message] }
}

fn retry(why: &str, exchange: &Exchange) -> Outcome {
    retry_with(why.to_owned(), exchange)
}

fn retry_with(reason: String, exchange: &Exchange) -> Outcome {
    Outcome::retry(reason, exchange.retry_after)
}
