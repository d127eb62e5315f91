//! The Segment tracking API (`/v1/batch`, `/v1/track`, `/v1/identify`): a batch whose write key
//! was accepted, each message mapped and parsed, the usable ones committed with the receipts of
//! the invalid ones in one `Store::intake`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{summary, Ledger};
use crate::config::sources::SegmentSource;
use crate::ingest::canonical::{parse_capture, parse_event};
use crate::ingest::FieldError;
use crate::sources::segment::{self, Message};
use crate::store::{Intake, Receipt, ReceiptStatus, StoreError};

/// How many invalid messages of one Segment batch get their own receipt and are listed in a
/// refusal; the rest are counted in one receipt.
pub const MAX_LISTED: usize = 20;

/// The answer for one message of a Segment batch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MessageResult {
    pub index: usize,
    pub message_id: Option<String>,
    /// `accepted`, `duplicate`, `conflict`, `captured`, `ignored` or `invalid`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// What became of a Segment batch.
#[derive(Debug)]
pub enum Segment {
    /// No message could be used: one bounded `invalid` receipt was recorded for the batch, and
    /// nothing else. `results` lists the first [`MAX_LISTED`].
    Refused { invalid: usize, results: Vec<MessageResult> },
    /// Every message answered; the usable ones committed together with the receipts of the
    /// invalid ones (one each up to [`MAX_LISTED`], then one for the rest).
    Answered { results: Vec<MessageResult>, invalid: usize, due: bool },
}

/// A Segment batch (or a single `track`/`identify`) whose write key was accepted: each message
/// mapped and parsed, then the batch's events, captures and receipts committed in one transaction.
#[tracing::instrument(skip_all, fields(source = "segment", messages = messages.len(), events))]
pub async fn segment(
    ledger: Ledger<'_>,
    config: &SegmentSource,
    messages: Vec<Value>,
    received_at: DateTime<Utc>,
) -> Result<Segment, StoreError> {
    let (mut events, mut slots, mut captures, mut rejects) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut results: Vec<MessageResult> = Vec::with_capacity(messages.len());
    for (index, message) in messages.iter().enumerate() {
        let message_id = message.get("messageId").and_then(Value::as_str).map(str::to_owned);
        let topic = message.get("event").or_else(|| message.get("type")).and_then(Value::as_str).unwrap_or("?");
        let answer = |status: &'static str| MessageResult {
            index,
            message_id: message_id.clone(),
            status,
            event_id: None,
            reason: None,
            errors: Vec::new(),
        };
        let fail = |errors: Vec<FieldError>, rejects: &mut Vec<Receipt>| {
            let receipt_id =
                message_id.clone().unwrap_or_else(|| format!("batch[{index}]@{}", received_at.to_rfc3339()));
            rejects.push(Receipt {
                source: "segment".into(),
                receipt_id,
                topic: topic.to_owned(),
                status: ReceiptStatus::Invalid,
                detail: Some(summary(&errors)),
                at: received_at,
            });
            MessageResult { errors, ..answer("invalid") }
        };
        let prefix = format!("batch[{index}]");
        let result = match segment::map(message, config, received_at) {
            Ok(Message::Event(e)) => match parse_event(e, "segment", received_at, &prefix) {
                Ok(e) => {
                    slots.push(results.len());
                    events.push(e);
                    answer("pending")
                }
                Err(errors) => fail(errors, &mut rejects),
            },
            Ok(Message::Capture(c)) => match parse_capture(c, received_at) {
                Ok(c) => {
                    captures.push(c);
                    answer("captured")
                }
                Err(errors) => fail(errors, &mut rejects),
            },
            Ok(Message::Ignored(reason)) => {
                ledger.metrics.source("segment", "ignored");
                MessageResult { reason: Some(reason), ..answer("ignored") }
            }
            Err(e) => fail(vec![FieldError::new(format!("{prefix}.{}", e.field), "invalid", e.message)], &mut rejects),
        };
        results.push(result);
    }
    tracing::Span::current().record("events", events.len());
    let invalid = rejects.len();
    if invalid > 0 && invalid == results.len() {
        // Refused whole: one bounded receipt and a bounded answer, however many messages came.
        ledger.metrics.sources_by("segment", "invalid", invalid as u64);
        tracing::warn!(invalid, "a segment batch was refused: no message could become an event");
        let first: String =
            rejects.into_iter().next().and_then(|r| r.detail).unwrap_or_default().chars().take(500).collect();
        let receipt = batch_receipt(received_at, format!("{invalid} invalid messages; the first: {first}"));
        ledger.commit(Intake { at: received_at, receipts: vec![receipt], ..Intake::default() }).await?;
        results.truncate(MAX_LISTED);
        return Ok(Segment::Refused { invalid, results });
    }
    let mut receipts = Vec::new();
    if invalid > 0 {
        ledger.metrics.sources_by("segment", "invalid", invalid as u64);
        tracing::warn!(invalid, "segment messages that could not become events were recorded as invalid receipts");
        // One receipt per invalid message up to a bound, then one for the rest.
        receipts = rejects.into_iter().take(MAX_LISTED).collect();
        if invalid > MAX_LISTED {
            let rest = invalid - MAX_LISTED;
            receipts.push(batch_receipt(received_at, format!("{rest} more invalid messages in this batch")));
        }
    }
    if !events.is_empty() {
        ledger.metrics.sources_by("segment", "mapped", events.len() as u64);
    }
    let mut due = false;
    if !(events.is_empty() && captures.is_empty() && receipts.is_empty()) {
        let intake = Intake { at: received_at, captures, events, receipts, ..Intake::default() };
        let (result, now_due) = ledger.commit(intake).await?;
        due = now_due;
        for (slot, r) in slots.into_iter().zip(result.events) {
            results[slot].status = r.status.as_str();
            results[slot].event_id = Some(r.event_id);
        }
    }
    Ok(Segment::Answered { results, invalid, due })
}

/// A receipt for a Segment batch as a whole (its messages are counted, not stored one by one).
fn batch_receipt(at: DateTime<Utc>, detail: String) -> Receipt {
    Receipt {
        source: "segment".into(),
        receipt_id: format!("batch@{}", at.to_rfc3339()),
        topic: "batch".into(),
        status: ReceiptStatus::Invalid,
        detail: Some(detail),
        at,
    }
}
