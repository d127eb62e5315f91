//! `POST /v1/webhooks/stripe`, `POST /v1/webhooks/shopify` and the Segment tracking API
//! (`/v1/batch`, `/v1/track`, `/v1/identify`). Signatures and write keys are checked on the raw
//! bytes before anything is parsed; a refused request stores nothing. What a source sent is
//! handed to its use case in `ingest::intake`, which maps, parses and commits it whole; these
//! handlers only translate HTTP to and from it.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::Utc;
use serde_json::{json, Value};

use super::problem::Problem;
use crate::api::App;
use crate::ingest::intake::{self, summary, Segment as SegmentAnswer, Webhook, MAX_LISTED};
use crate::ingest::json;
use crate::sources::segment::{self, BodyError};
use crate::sources::{shopify, stripe, SignatureError};

fn not_configured(source: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "source_not_configured",
        "Source not configured",
        format!("[sources.{source}] is not configured on this server"),
    )
}

fn raw(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Problem> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large", r.body_text())
        } else {
            Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", "Unreadable body", r.body_text())
        }
    })
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn refused(app: &App, source: &str, e: SignatureError) -> Problem {
    app.metrics.source(source, e.code());
    tracing::warn!(source, code = e.code(), "webhook refused: {e}");
    let status = match e {
        SignatureError::Missing | SignatureError::Malformed | SignatureError::NoV1 => StatusCode::BAD_REQUEST,
        SignatureError::Mismatch | SignatureError::Stale => StatusCode::UNAUTHORIZED,
    };
    Problem::new(status, e.code(), "Signature refused", format!("{e}; nothing was stored"))
}

pub async fn stripe(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let config = app.config.sources.stripe.as_ref().ok_or_else(|| not_configured("stripe"))?;
    let body = raw(body)?;
    let now = Utc::now();
    stripe::verify(
        header_str(&headers, "stripe-signature"),
        &body,
        &app.sources.stripe,
        now.timestamp(),
        config.tolerance_secs,
    )
    .map_err(|e| refused(&app, "stripe", e))?;
    let event: Value = json::parse(&body)?;
    let answer = intake::stripe(app.ledger(), config, event, now).await?;
    webhook_answer(&app, answer)
}

pub async fn shopify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let config = app.config.sources.shopify.as_ref().ok_or_else(|| not_configured("shopify"))?;
    let body = raw(body)?;
    let now = Utc::now();
    shopify::verify(header_str(&headers, "x-shopify-hmac-sha256"), &body, &app.sources.shopify)
        .map_err(|e| refused(&app, "shopify", e))?;
    let topic = header_str(&headers, "x-shopify-topic").map(str::to_owned).ok_or_else(|| {
        Problem::new(StatusCode::BAD_REQUEST, "missing_topic", "Missing topic", "X-Shopify-Topic is required")
    })?;
    let value: Value = json::parse(&body)?;
    // Stable across Shopify's redeliveries of the same webhook.
    let receipt_id = header_str(&headers, "x-shopify-webhook-id")
        .or_else(|| header_str(&headers, "x-shopify-event-id"))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{topic}:{}", crate::core::pii::sha256_hex(&body)));
    let answer = intake::shopify(app.ledger(), config, topic, value, receipt_id, now).await?;
    webhook_answer(&app, answer)
}

/// Stripe and Shopify retry anything but 2xx, so ignored types, duplicates and conflicts all
/// answer 200 (the conflict is recorded in the ledger); only a message that cannot be mapped
/// answers 422 (it was recorded as invalid).
fn webhook_answer(app: &App, answer: Webhook) -> Result<Response, Problem> {
    match answer {
        Webhook::Ignored(reason) => {
            Ok((StatusCode::OK, Json(json!({"status": "ignored", "reason": reason}))).into_response())
        }
        Webhook::Invalid(errors) => Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unmappable_event",
            "Event cannot be mapped",
            format!("{}; recorded as invalid, no event stored", summary(&errors)),
        )
        .with_errors(errors)),
        Webhook::Mapped { events, due } => {
            if due {
                app.wake_workers();
            }
            let overall = events.first().map_or("accepted", |r| r.status.as_str());
            Ok((StatusCode::OK, Json(json!({"status": overall, "events": events}))).into_response())
        }
    }
}

pub async fn segment_batch(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    segment(&app, &headers, body, None).await.map_err(Problem::for_sdk)
}

pub async fn segment_track(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    segment(&app, &headers, body, Some("track")).await.map_err(Problem::for_sdk)
}

pub async fn segment_identify(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    segment(&app, &headers, body, Some("identify")).await.map_err(Problem::for_sdk)
}

fn write_key_ok(app: &App, key: &str) -> bool {
    app.sources
        .segment
        .iter()
        .fold(false, |found, k| found | crate::sources::same(k.expose().as_bytes(), key.as_bytes()))
}

async fn segment(
    app: &App,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint_type: Option<&str>,
) -> Result<Response, Problem> {
    let config = app.config.sources.segment.as_ref().ok_or_else(|| not_configured("segment"))?;
    let received_at = Utc::now();
    let refuse = |why: &str| {
        app.metrics.source("segment", "invalid_write_key");
        Problem::new(StatusCode::UNAUTHORIZED, "invalid_write_key", "Invalid write key", why.to_owned())
    };
    // A Basic-auth key is checked before the body is even decompressed.
    let basic = segment::basic_user(header_str(headers, header::AUTHORIZATION.as_str()));
    if let Some(k) = &basic {
        if !write_key_ok(app, k) {
            return Err(refuse("the write key in Authorization is not configured"));
        }
    }
    let gzip = header_str(headers, header::CONTENT_ENCODING.as_str()).is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
    let bad = |code: &'static str, e: BodyError| {
        app.metrics.source("segment", code);
        Problem::new(StatusCode::BAD_REQUEST, code, "Bad batch", e.to_string())
    };
    let decoded = segment::decode(gzip, &raw(body)?).map_err(|e| match e {
        BodyError::TooLarge => bad("batch_too_large", e),
        _ => bad("unreadable_body", e),
    })?;
    let request = segment::messages(&decoded, endpoint_type).map_err(|e| match e {
        BodyError::Json(_) => bad("malformed_json", e),
        BodyError::DuplicateKey(_) => bad("duplicate_key", e),
        BodyError::MessageTooLarge { .. } => bad("message_too_large", e),
        _ => bad("invalid_batch", e),
    })?;
    if basic.is_none() {
        match &request.write_key {
            Some(k) if write_key_ok(app, k) => {}
            Some(_) => return Err(refuse("the writeKey in the body is not configured")),
            None => return Err(refuse("send the write key as Basic auth user name or as writeKey")),
        }
    }

    match intake::segment(app.ledger(), config, request.messages, received_at).await? {
        SegmentAnswer::Refused { invalid, results } => {
            let mut p = Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_messages",
                "Invalid messages",
                format!(
                    "none of the {invalid} messages could be used; the first {} are listed; \
                     one invalid receipt was recorded for the batch",
                    invalid.min(MAX_LISTED)
                ),
            );
            p.results = Some(serde_json::to_value(results).unwrap_or_default());
            Err(p)
        }
        SegmentAnswer::Answered { results, invalid, due } => {
            if due {
                app.wake_workers();
            }
            let count = |s: &str| results.iter().filter(|r| r.status == s).count();
            let body = json!({
                "success": invalid < results.len() || results.is_empty(),
                "accepted": count("accepted"),
                "duplicate": count("duplicate"),
                "conflict": count("conflict"),
                "captured": count("captured"),
                "ignored": count("ignored"),
                "invalid": invalid,
                "results": results,
            });
            Ok((StatusCode::OK, Json(body)).into_response())
        }
    }
}
