//! Stripe and Shopify webhooks: verified elsewhere on their raw bytes, mapped, parsed and
//! committed here with their capture, aliases and receipt in one `Store::intake`.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{summary, Ledger};
use crate::config::sources::{ShopifySource, StripeSource};
use crate::core::Event;
use crate::ingest::canonical::{parse_capture, parse_event};
use crate::ingest::FieldError;
use crate::sources::{shopify, stripe, MapError, Mapped};
use crate::store::{IngestResult, Intake, Receipt, ReceiptStatus, StoreError};

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
