//! One HTTP exchange with Google, recorded the way `delivery::http::post_json` records its
//! POSTs — but for any request (bearer header, form body, GET), which `post_json` cannot send.
//! Errors are described without their URL.

use std::time::{Duration, Instant};

use chrono::Utc;

pub use crate::delivery::http::Exchange;
use crate::delivery::http::{excerpt, retry_after, MAX_RESPONSE_BYTES};
use crate::delivery::RequestRecord;

/// Sends `request` and records what came back. Never fails: a network error or timeout is part
/// of the record. `body_sha256` is the hash of the body the request carries.
pub async fn run(endpoint: &'static str, request: reqwest::RequestBuilder, body_sha256: String) -> Exchange {
    let sent_at = Utc::now();
    let started = Instant::now();
    let mut exchange = Exchange {
        record: RequestRecord {
            endpoint,
            sent_at,
            duration: Duration::ZERO,
            status: None,
            error: None,
            response_excerpt: String::new(),
            body_sha256,
        },
        body: Vec::new(),
        retry_after: None,
        timed_out: false,
    };
    match request.send().await {
        Ok(mut response) => {
            exchange.record.status = Some(response.status().as_u16());
            exchange.retry_after = retry_after(response.headers(), Utc::now());
            if let Err(e) = read_bounded(&mut response, &mut exchange.body).await {
                exchange.timed_out = e.is_timeout();
                exchange.record.error = Some(describe(e));
            }
            exchange.record.response_excerpt = excerpt(&exchange.body);
        }
        Err(e) => {
            exchange.timed_out = e.is_timeout();
            exchange.record.error = Some(describe(e));
        }
    }
    exchange.record.duration = started.elapsed();
    exchange
}

async fn read_bounded(response: &mut reqwest::Response, into: &mut Vec<u8>) -> Result<(), reqwest::Error> {
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - into.len();
        into.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if into.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(())
}

/// An error and its causes on one line, without the URL.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
