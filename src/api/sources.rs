//! `POST /v1/webhooks/stripe`, `POST /v1/webhooks/shopify` and the Segment tracking API
//! (`/v1/batch`, `/v1/track`, `/v1/identify`). Signatures and write keys are checked on the raw
//! bytes before anything is parsed; a refused request stores nothing. What a source sent is
//! mapped (`crate::sources`), parsed as canonical events, committed, and its receipt recorded.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::events::{commit, summary};
use super::problem::Problem;
use crate::api::App;
use crate::ingest::canonical::{parse_capture, parse_event};
use crate::ingest::{json, FieldError};
use crate::sources::segment::{self, BodyError, Message};
use crate::sources::{shopify, stripe, MapError, Mapped, SignatureError};
use crate::store::{IngestStatus, Receipt};

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
    let receipt_id = event.get("id").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let topic = event.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let mut known = None;
    for alias in stripe::alias_candidates(&event) {
        known = app.store.resolve_alias(&alias).await.map_err(|e| Problem::storage(&e))?;
        if known.is_some() {
            break;
        }
    }
    let mapped = stripe::map(&event, config, known.as_ref());
    webhook(&app, "stripe", receipt_id, topic, mapped, now).await
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
    let mapped = shopify::map(&topic, &value, config);
    webhook(&app, "shopify", receipt_id, topic, mapped, now).await
}

/// The common end of a webhook: record and answer. Stripe and Shopify retry anything but 2xx, so
/// ignored types, duplicates and conflicts all answer 200 (the conflict is recorded in the
/// ledger); only a message that cannot be mapped answers 422, and is recorded as invalid.
async fn webhook(
    app: &App,
    source: &'static str,
    receipt_id: String,
    topic: String,
    mapped: Result<Mapped, MapError>,
    now: DateTime<Utc>,
) -> Result<Response, Problem> {
    let receipt = |status: &'static str, detail: String| Receipt {
        source: source.to_owned(),
        receipt_id: receipt_id.clone(),
        topic: topic.clone(),
        status,
        detail: Some(detail),
        at: now,
    };
    let (events, capture, aliases) = match mapped {
        Ok(Mapped::Ignored(reason)) => {
            app.store
                .record_receipts(vec![receipt("ignored", reason.clone())])
                .await
                .map_err(|e| Problem::storage(&e))?;
            app.metrics.source(source, "ignored");
            return Ok((StatusCode::OK, Json(json!({"status": "ignored", "reason": reason}))).into_response());
        }
        Ok(Mapped::Events { events, capture, aliases }) => (events, capture, aliases),
        Err(e) => {
            return Err(invalid(
                app,
                receipt("invalid", e.to_string()),
                vec![FieldError::new(e.field, "invalid", e.message)],
            )
            .await)
        }
    };
    let mut parsed = Vec::with_capacity(events.len());
    for value in events {
        match parse_event(value, source, now, "") {
            Ok(e) => parsed.push(e),
            Err(errors) => return Err(invalid(app, receipt("invalid", summary(&errors)), errors).await),
        }
    }
    if let Some(c) = capture {
        match parse_capture(c, now) {
            Ok(c) => super::events::capture(app, c).await?,
            Err(errors) => return Err(invalid(app, receipt("invalid", summary(&errors)), errors).await),
        }
    }
    if let Some(subject) = parsed.first().map(|e| e.subject.clone()).filter(|_| !aliases.is_empty()) {
        let pairs = aliases.into_iter().map(|a| (a, subject.clone())).collect();
        app.store.record_aliases(pairs).await.map_err(|e| Problem::storage(&e))?;
    }
    let results = commit(app, parsed).await?;
    let detail = results.iter().map(|r| format!("{} {}", r.event_id, status(r.status))).collect::<Vec<_>>().join(", ");
    app.store.record_receipts(vec![receipt("mapped", detail)]).await.map_err(|e| Problem::storage(&e))?;
    app.metrics.source(source, "mapped");
    let overall = results.first().map_or("accepted", |r| status(r.status));
    Ok((StatusCode::OK, Json(json!({"status": overall, "events": results}))).into_response())
}

fn status(s: IngestStatus) -> &'static str {
    match s {
        IngestStatus::Accepted => "accepted",
        IngestStatus::Duplicate => "duplicate",
        IngestStatus::Conflict => "conflict",
    }
}

/// Records a message that could not become an event, and the 422 that says why.
async fn invalid(app: &App, receipt: Receipt, errors: Vec<FieldError>) -> Problem {
    app.metrics.source(&receipt.source, "invalid");
    tracing::warn!(source = %receipt.source, id = %receipt.receipt_id, topic = %receipt.topic, "unmappable message: {}", summary(&errors));
    if let Err(e) = app.store.record_receipts(vec![receipt]).await {
        return Problem::storage(&e);
    }
    Problem::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "unmappable_event",
        "Event cannot be mapped",
        format!("{}; recorded as invalid, no event stored", summary(&errors)),
    )
    .with_errors(errors)
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

/// How many invalid messages of one Segment batch get their own receipt and are listed in a
/// refusal; the rest are counted in one receipt.
const MAX_LISTED: usize = 20;

/// A receipt for a Segment batch as a whole (its messages are counted, not stored one by one).
fn batch_receipt(at: DateTime<Utc>, detail: String) -> Receipt {
    Receipt {
        source: "segment".into(),
        receipt_id: format!("batch@{}", at.to_rfc3339()),
        topic: "batch".into(),
        status: "invalid",
        detail: Some(detail),
        at,
    }
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

    let (mut events, mut slots, mut captures, mut rejects) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut results: Vec<Value> = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.iter().enumerate() {
        let message_id = message.get("messageId").and_then(Value::as_str).map(str::to_owned);
        let topic = message.get("event").or_else(|| message.get("type")).and_then(Value::as_str).unwrap_or("?");
        let fail = |errors: Vec<FieldError>, rejects: &mut Vec<Receipt>| {
            let receipt_id =
                message_id.clone().unwrap_or_else(|| format!("batch[{index}]@{}", received_at.to_rfc3339()));
            rejects.push(Receipt {
                source: "segment".into(),
                receipt_id,
                topic: topic.to_owned(),
                status: "invalid",
                detail: Some(summary(&errors)),
                at: received_at,
            });
            json!({"index": index, "message_id": message_id, "status": "invalid", "errors": errors})
        };
        let prefix = format!("batch[{index}]");
        let result = match segment::map(message, config, received_at) {
            Ok(Message::Event(e)) => match parse_event(e, "segment", received_at, &prefix) {
                Ok(e) => {
                    slots.push(results.len());
                    events.push(e);
                    json!({"index": index, "message_id": message_id, "status": "pending"})
                }
                Err(errors) => fail(errors, &mut rejects),
            },
            Ok(Message::Capture(c)) => match parse_capture(c, received_at) {
                Ok(c) => {
                    captures.push(c);
                    json!({"index": index, "message_id": message_id, "status": "captured"})
                }
                Err(errors) => fail(errors, &mut rejects),
            },
            Ok(Message::Ignored(reason)) => {
                app.metrics.source("segment", "ignored");
                json!({"index": index, "message_id": message_id, "status": "ignored", "reason": reason})
            }
            Err(e) => fail(vec![FieldError::new(format!("{prefix}.{}", e.field), "invalid", e.message)], &mut rejects),
        };
        results.push(result);
    }
    let invalid = rejects.len();
    if invalid > 0 && invalid == results.len() {
        // Refused whole: one bounded receipt and a bounded answer, however many messages came.
        app.metrics.sources_by("segment", "invalid", invalid as u64);
        tracing::warn!(invalid, "a segment batch was refused: no message could become an event");
        let first: String =
            rejects.into_iter().next().and_then(|r| r.detail).unwrap_or_default().chars().take(500).collect();
        let receipt = batch_receipt(received_at, format!("{invalid} invalid messages; the first: {first}"));
        app.store.record_receipts(vec![receipt]).await.map_err(|e| Problem::storage(&e))?;
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
        results.truncate(MAX_LISTED);
        p.results = Some(Value::Array(results));
        return Err(p);
    }
    if invalid > 0 {
        app.metrics.sources_by("segment", "invalid", invalid as u64);
        tracing::warn!(invalid, "segment messages that could not become events were recorded as invalid receipts");
        // One receipt per invalid message up to a bound, then one for the rest.
        let mut receipts: Vec<Receipt> = rejects.into_iter().take(MAX_LISTED + 1).collect();
        if invalid > MAX_LISTED {
            receipts.truncate(MAX_LISTED);
            let rest = invalid - MAX_LISTED;
            receipts.push(batch_receipt(received_at, format!("{rest} more invalid messages in this batch")));
        }
        app.store.record_receipts(receipts).await.map_err(|e| Problem::storage(&e))?;
    }
    for c in captures {
        super::events::capture(app, c).await?;
    }
    if !events.is_empty() {
        app.metrics.sources_by("segment", "mapped", events.len() as u64);
        for (slot, r) in slots.into_iter().zip(commit(app, events).await?) {
            results[slot]["status"] = json!(status(r.status));
            results[slot]["event_id"] = json!(r.event_id);
        }
    }
    let count = |s: &str| results.iter().filter(|r| r["status"] == s).count();
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
