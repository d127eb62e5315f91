//! Intake, one use case per source: what arrived (already authenticated, or verified on its raw
//! bytes) is mapped and parsed into canonical events and identity captures, and everything one
//! message means — captures, aliases, events and its receipt — is committed by one
//! `Store::intake`, so a crash cannot keep half of it. The HTTP handlers and the importer only
//! translate to and from these functions; none of them calls a destination.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::canonical::{parse_capture, parse_event};
use super::FieldError;
use crate::config::sources::{SegmentSource, ShopifySource, StripeSource};
use crate::core::plan::Planner;
use crate::core::{DeliveryState, Event, Subject};
use crate::sources::segment::{self, Message};
use crate::sources::{shopify, stripe, MapError, Mapped};
use crate::store::{IngestResult, IngestStatus, Intake, IntakeResult, Receipt, ReceiptStatus, Store, StoreError};
use crate::telemetry::{EventLabels, Metrics};

/// Where intake writes, and what it counts.
#[derive(Clone, Copy)]
pub struct Ledger<'a> {
    pub store: &'a dyn Store,
    pub planner: &'a Arc<Planner>,
    pub metrics: &'a Metrics,
}

/// How many invalid messages of one Segment batch get their own receipt and are listed in a
/// refusal; the rest are counted in one receipt.
pub const MAX_LISTED: usize = 20;

/// `"field: message; …"`, for receipts, logs and problem details.
pub fn summary(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl Ledger<'_> {
    /// Commits `intake`, counts what it became, and says whether a delivery became due (the
    /// caller wakes the workers).
    async fn commit(&self, intake: Intake) -> Result<(IntakeResult, bool), StoreError> {
        let kinds: Vec<(String, String)> =
            intake.events.iter().map(|e| (e.source.clone(), e.kind.to_string())).collect();
        let result = self.store.intake(intake, self.planner.clone()).await?;
        let mut due = false;
        for d in &result.replanned {
            if d.state.is_ended() {
                self.metrics.delivery(&d.destination, d.state.as_str(), d.reason);
            }
            due |= d.state == DeliveryState::Pending;
        }
        for ((source, kind), r) in kinds.iter().zip(&result.events) {
            let status = match r.status {
                IngestStatus::Accepted if r.deliveries.is_empty() => "not_routed",
                s => s.as_str(),
            };
            self.count_event(source, kind, status);
            for d in &r.deliveries {
                due |= d.state == DeliveryState::Pending;
                self.metrics.delivery(&d.destination, d.state.as_str(), d.reason);
            }
        }
        Ok((result, due))
    }

    fn count_event(&self, source: &str, kind: &str, status: &str) {
        let labels = EventLabels { source: source.to_owned(), kind: kind.to_owned(), status: status.to_owned() };
        self.metrics.events.get_or_create(&labels).inc();
    }
}

/// What became of one item of `POST /v1/events`.
#[derive(Debug)]
pub enum Item {
    /// Not an event; nothing of it was stored.
    Invalid {
        event_id: Option<String>,
        errors: Vec<FieldError>,
    },
    Stored(IngestResult),
}

/// `POST /v1/events`: the items, in order, and whether a delivery became due.
#[derive(Debug)]
pub struct Events {
    pub items: Vec<Item>,
    pub due: bool,
}

/// `POST /v1/events`, one event (`batch` false: field paths without a prefix) or a batch (each
/// item's fields under `events[i]`). The valid items are committed together; invalid ones are
/// answered and not stored. A batch with nothing valid writes nothing.
#[tracing::instrument(skip_all, fields(source = "api", events = items.len()))]
pub async fn events(
    ledger: Ledger<'_>,
    items: Vec<Value>,
    batch: bool,
    now: DateTime<Utc>,
) -> Result<Events, StoreError> {
    let mut out: Vec<Option<Item>> = Vec::with_capacity(items.len());
    let (mut valid, mut slots) = (Vec::new(), Vec::new());
    for (index, item) in items.into_iter().enumerate() {
        let given_id = item.get("event_id").and_then(Value::as_str).map(str::to_owned);
        let prefix = if batch { format!("events[{index}]") } else { String::new() };
        match parse_event(item, "api", now, &prefix) {
            Ok(event) => {
                slots.push(index);
                valid.push(event);
                out.push(None);
            }
            Err(errors) => {
                ledger.count_event("api", "unknown", "invalid");
                out.push(Some(Item::Invalid { event_id: given_id, errors }));
            }
        }
    }
    let mut due = false;
    if !valid.is_empty() {
        let (result, now_due) = ledger.commit(Intake { at: now, events: valid, ..Intake::default() }).await?;
        due = now_due;
        for (slot, r) in slots.into_iter().zip(result.events) {
            out[slot] = Some(Item::Stored(r));
        }
    }
    Ok(Events { items: out.into_iter().flatten().collect(), due })
}

/// `POST /v1/identities`: what became of a capture.
#[derive(Debug)]
pub enum Identity {
    Invalid(Vec<FieldError>),
    /// Added to the bridge; `due`: a delivery that was awaiting it became due.
    Captured {
        subject: Subject,
        due: bool,
    },
}

/// `POST /v1/identities`: adds a capture to the identity bridge, re-planning the deliveries that
/// were awaiting it in the same transaction. `from_browser`: posted with a capture key (it may
/// only add to the bridge).
#[tracing::instrument(skip_all, fields(source = "identity", events = 0, from_browser))]
pub async fn identity(
    ledger: Ledger<'_>,
    value: Value,
    from_browser: bool,
    now: DateTime<Utc>,
) -> Result<Identity, StoreError> {
    let mut capture = match parse_capture(value, now) {
        Ok(c) => c,
        Err(errors) => return Ok(Identity::Invalid(errors)),
    };
    capture.from_browser = from_browser;
    let subject = capture.subject.clone();
    let (_, due) = ledger.commit(Intake { at: now, captures: vec![capture], ..Intake::default() }).await?;
    Ok(Identity::Captured { subject, due })
}

/// What became of a Stripe or Shopify webhook. Every one of them was recorded as a receipt.
#[derive(Debug)]
pub enum Webhook {
    /// A type no kind is configured for, or a state that is not the business event.
    Ignored(String),
    /// The message names a mapped type but cannot become an event; nothing else was stored.
    Invalid(Vec<FieldError>),
    /// Its events (accepted, duplicate or conflict), committed with its capture and aliases.
    Mapped { events: Vec<IngestResult>, due: bool },
}

/// One webhook as received: the source's id for it and its type.
struct Received {
    source: &'static str,
    receipt_id: String,
    topic: String,
    at: DateTime<Utc>,
}

impl Received {
    fn receipt(&self, status: ReceiptStatus, detail: Option<String>) -> Receipt {
        Receipt {
            source: self.source.to_owned(),
            receipt_id: self.receipt_id.clone(),
            topic: self.topic.clone(),
            status,
            detail,
            at: self.at,
        }
    }
}

/// A Stripe event whose signature was verified: mapped (a dispute or refund that names only the
/// payment finds its subject through the aliases recorded with the payment) and recorded.
#[tracing::instrument(skip_all, fields(source = "stripe", events))]
pub async fn stripe(
    ledger: Ledger<'_>,
    config: &StripeSource,
    event: Value,
    at: DateTime<Utc>,
) -> Result<Webhook, StoreError> {
    let receipt_id = event.get("id").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let topic = event.get("type").and_then(Value::as_str).unwrap_or("unknown").to_owned();
    let mut known = None;
    for alias in stripe::alias_candidates(&event) {
        known = ledger.store.resolve_alias(&alias).await?;
        if known.is_some() {
            break;
        }
    }
    let mapped = stripe::map(&event, config, known.as_ref());
    webhook(ledger, Received { source: "stripe", receipt_id, topic, at }, mapped).await
}

/// A Shopify webhook whose HMAC was verified; `receipt_id` is stable across Shopify's
/// redeliveries of it.
#[tracing::instrument(skip_all, fields(source = "shopify", events))]
pub async fn shopify(
    ledger: Ledger<'_>,
    config: &ShopifySource,
    topic: String,
    value: Value,
    receipt_id: String,
    at: DateTime<Utc>,
) -> Result<Webhook, StoreError> {
    let mapped = shopify::map(&topic, &value, config);
    webhook(ledger, Received { source: "shopify", receipt_id, topic, at }, mapped).await
}

/// The common end of a webhook: parse what it mapped to, then commit its capture, aliases, events
/// and `mapped` receipt together — or record it as ignored or invalid.
async fn webhook(
    ledger: Ledger<'_>,
    received: Received,
    mapped: Result<Mapped, MapError>,
) -> Result<Webhook, StoreError> {
    let source = received.source;
    let (events, capture, aliases) = match mapped {
        Ok(Mapped::Ignored(reason)) => {
            let receipt = received.receipt(ReceiptStatus::Ignored, Some(reason.clone()));
            ledger.commit(Intake { at: received.at, receipts: vec![receipt], ..Intake::default() }).await?;
            ledger.metrics.source(source, "ignored");
            return Ok(Webhook::Ignored(reason));
        }
        Ok(Mapped::Events { events, capture, aliases }) => (events, capture, aliases),
        Err(e) => return invalid(ledger, &received, vec![FieldError::new(e.field, "invalid", e.message)]).await,
    };
    let mut parsed: Vec<Event> = Vec::with_capacity(events.len());
    for value in events {
        match parse_event(value, source, received.at, "") {
            Ok(e) => parsed.push(e),
            Err(errors) => return invalid(ledger, &received, errors).await,
        }
    }
    let captures = match capture.map(|c| parse_capture(c, received.at)).transpose() {
        Ok(c) => c.into_iter().collect(),
        Err(errors) => return invalid(ledger, &received, errors).await,
    };
    let aliases = match parsed.first() {
        Some(first) => aliases.into_iter().map(|a| (a, first.subject.clone())).collect(),
        None => Vec::new(),
    };
    tracing::Span::current().record("events", parsed.len());
    let intake = Intake {
        at: received.at,
        captures,
        aliases,
        events: parsed,
        receipts: Vec::new(),
        mapped: Some(received.receipt(ReceiptStatus::Mapped, None)),
    };
    let (result, due) = ledger.commit(intake).await?;
    ledger.metrics.source(source, "mapped");
    Ok(Webhook::Mapped { events: result.events, due })
}

/// Records a message that could not become an event, as invalid and nothing else.
async fn invalid(ledger: Ledger<'_>, received: &Received, errors: Vec<FieldError>) -> Result<Webhook, StoreError> {
    let detail = summary(&errors);
    ledger.metrics.source(received.source, "invalid");
    tracing::warn!(source = received.source, id = %received.receipt_id, topic = %received.topic, "unmappable message: {detail}");
    let receipt = received.receipt(ReceiptStatus::Invalid, Some(detail));
    ledger.commit(Intake { at: received.at, receipts: vec![receipt], ..Intake::default() }).await?;
    Ok(Webhook::Invalid(errors))
}

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

/// `surety import`: one batch of a file's parsed rows, committed together (the importer writes
/// its checkpoint after this returns).
#[tracing::instrument(skip_all, fields(source = "import", events = events.len()))]
pub async fn import(
    store: &dyn Store,
    planner: Arc<Planner>,
    events: Vec<Event>,
    at: DateTime<Utc>,
) -> Result<Vec<IngestResult>, StoreError> {
    Ok(store.intake(Intake { at, events, ..Intake::default() }, planner).await?.events)
}
