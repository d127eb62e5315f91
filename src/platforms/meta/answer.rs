//! Reading Meta's answers: `{"events_received", "messages", "fbtrace_id"}` on success, the Graph
//! API error object otherwise, classified by its code before its HTTP status.
//!
//! Codes: developers.facebook.com/docs/graph-api/guides/error-handling and
//! …/marketing-api/conversions-api/support; docs/platforms.md §Meta "Errors".

use std::time::Duration;

use serde::Deserialize;

use crate::core::RetryAfter;
use crate::delivery::http::{Exchange, StatusClass};

/// The least wait after a rate-limit code (4, 17, 613 and their subcodes): Meta's throttles
/// are counted over rolling windows of minutes, so an early retry only extends them.
pub const SLOW_DOWN_FLOOR: Duration = Duration::from_secs(60);

/// Codes of a refused credential: the destination must stop until someone fixes the token.
/// 190: invalid or expired access token; 102: session invalid; 104: no access token.
pub const HALT_CODES: [i64; 3] = [190, 102, 104];
/// Temporary: 1 (unknown error, possibly transient), 2 (service temporarily unavailable).
pub const TRANSIENT_CODES: [i64; 2] = [1, 2];
/// Rate limiting: 4 (application), 17 (user), 613 (calls within one hour).
pub const RATE_LIMIT_CODES: [i64; 3] = [4, 17, 613];
/// Rate-limit subcodes that may come with other codes.
pub const RATE_LIMIT_SUBCODES: [i64; 2] = [2446079, 1487742];
/// 10 and 200–299: permission; 368: blocked by policy. About the account, not the events.
pub fn is_account_code(code: i64) -> bool {
    code == 10 || (200..=299).contains(&code) || code == 368
}

/// The Graph API error object (`{"error": {...}}`).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
pub struct GraphError {
    #[serde(default)]
    pub message: String,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub error_subcode: Option<i64>,
    #[serde(default)]
    pub error_user_title: Option<String>,
    #[serde(default)]
    pub error_user_msg: Option<String>,
    #[serde(default)]
    pub fbtrace_id: Option<String>,
    #[serde(default)]
    pub is_transient: Option<bool>,
}

impl GraphError {
    /// `Meta error 100/2804019 (OAuthException): Invalid parameter — title: details [fbtrace_id X]`
    pub fn describe(&self) -> String {
        let mut s = String::from("Meta error");
        if let Some(code) = self.code {
            s.push_str(&format!(" {code}"));
            if let Some(sub) = self.error_subcode {
                s.push_str(&format!("/{sub}"));
            }
        }
        if !self.kind.is_empty() {
            s.push_str(&format!(" ({})", self.kind));
        }
        s.push_str(": ");
        s.push_str(if self.message.is_empty() { "no message" } else { &self.message });
        let user: Vec<&str> =
            [&self.error_user_title, &self.error_user_msg].into_iter().flatten().map(String::as_str).collect();
        if !user.is_empty() {
            s.push_str(" — ");
            s.push_str(&user.join(": "));
        }
        if let Some(trace) = &self.fbtrace_id {
            s.push_str(&format!(" [fbtrace_id {trace}]"));
        }
        s
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: GraphError,
}

#[derive(Deserialize)]
struct Success {
    events_received: u64,
    #[serde(default)]
    messages: Vec<serde_json::Value>,
    #[serde(default)]
    fbtrace_id: Option<String>,
}

/// What one answer means for every event of its request.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestVerdict {
    /// 2xx. `received`: Meta's `events_received`, if the body said it.
    Received { received: Option<u64>, detail: String },
    /// Try the events again later.
    Retry { reason: String, after: RetryAfter },
    /// Meta refused our credentials: the worker stops the destination until a person acts.
    Halt { reason: String },
    /// Meta refused the request for good. `splittable`: a 400 about the payload, which may
    /// concern only some of its events.
    Rejected { message: String, splittable: bool },
}

impl RequestVerdict {
    /// Sending anything more to Meta now would only meet the same answer.
    pub fn stops_sending(&self) -> bool {
        matches!(self, Self::Retry { .. } | Self::Halt { .. })
    }
}

/// Reads one exchange.
pub fn read(exchange: &Exchange) -> RequestVerdict {
    let class = exchange.status_class();
    if class == StatusClass::Success {
        return received(exchange);
    }
    let graph = serde_json::from_slice::<ErrorEnvelope>(&exchange.body).ok().map(|e| e.error);
    if let Some(error) = graph.filter(|e| e.code.is_some() || e.is_transient.is_some()) {
        return classify(&error, exchange.status(), exchange.retry_after);
    }
    match class {
        StatusClass::Retry { reason } => {
            RequestVerdict::Retry { reason, after: RetryAfter::from_header(exchange.retry_after) }
        }
        StatusClass::Permanent { status } => RequestVerdict::Rejected {
            message: format!("HTTP {status}: {}", exchange.record.response_excerpt),
            splittable: status == 400,
        },
        StatusClass::Success => received(exchange),
    }
}

/// The classification of a Graph API error, by code first (docs/platforms.md §Meta "Errors").
pub fn classify(error: &GraphError, status: Option<u16>, retry_after: Option<Duration>) -> RequestVerdict {
    let code = error.code.unwrap_or_default();
    let what = error.describe();
    if HALT_CODES.contains(&code) {
        return RequestVerdict::Halt { reason: format!("access token invalid or expired (code {code}): {what}") };
    }
    let rate_limited =
        RATE_LIMIT_CODES.contains(&code) || error.error_subcode.is_some_and(|s| RATE_LIMIT_SUBCODES.contains(&s));
    if rate_limited {
        let wait = retry_after.unwrap_or_default().max(SLOW_DOWN_FLOOR);
        let reason = format!("slow down: rate limited by Meta: {what}");
        return RequestVerdict::Retry { reason, after: RetryAfter::SlowDown(wait) };
    }
    if TRANSIENT_CODES.contains(&code) || error.is_transient == Some(true) {
        return RequestVerdict::Retry {
            reason: format!("transient: {what}"),
            after: RetryAfter::from_header(retry_after),
        };
    }
    if is_account_code(code) {
        return RequestVerdict::Rejected { message: what, splittable: false };
    }
    match status {
        // An unlisted code on a server error, a timeout or throttling status: the request's
        // fate is unknown, so it is tried again.
        Some(s) if s == 408 || s == 429 || s >= 500 => {
            RequestVerdict::Retry { reason: format!("HTTP {s}: {what}"), after: RetryAfter::from_header(retry_after) }
        }
        // 100 (invalid parameter) and any other code on a 400: about the payload.
        Some(400) => RequestVerdict::Rejected { message: what, splittable: true },
        _ => RequestVerdict::Rejected { message: what, splittable: false },
    }
}

fn received(exchange: &Exchange) -> RequestVerdict {
    let status = exchange.status().unwrap_or_default();
    match serde_json::from_slice::<Success>(&exchange.body) {
        Ok(s) if exchange.record.error.is_none() => {
            let mut detail = format!("Meta events_received: {}", s.events_received);
            if !s.messages.is_empty() {
                let messages: Vec<String> = s.messages.iter().map(|m| m.to_string()).collect();
                detail.push_str(&format!("; messages: {}", messages.join("; ")));
            }
            if let Some(trace) = s.fbtrace_id {
                detail.push_str(&format!(" [fbtrace_id {trace}]"));
            }
            RequestVerdict::Received { received: Some(s.events_received), detail }
        }
        _ => RequestVerdict::Received {
            received: None,
            detail: format!("HTTP {status} without a readable events_received"),
        },
    }
}
