//! What the ledger is handed to write and what a write reports: ingest results, receipts, a
//! worker's batch record and delivery updates, recovery and retention counts.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::{AttemptOutcome, DeliveryState, RequestRecord};

/// What ingest made of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    Accepted,
    Duplicate,
    Conflict,
}

impl IngestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Conflict => "conflict",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngestResult {
    pub event_id: String,
    pub status: IngestStatus,
    /// Deliveries planned for an accepted event (none = `not_routed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<PlannedDelivery>,
}

/// What one `Store::prune` call deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub requests: u64,
    pub receipts: u64,
    pub aliases: u64,
    pub identities: u64,
    pub identity_captures: u64,
    /// Request bodies dropped (their hash kept): `[ledger] keep_request_bodies_days`.
    pub request_bodies: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, o: &Pruned) {
        self.events += o.events;
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.requests += o.requests;
        self.receipts += o.receipts;
        self.aliases += o.aliases;
        self.identities += o.identities;
        self.identity_captures += o.identity_captures;
        self.request_bodies += o.request_bodies;
    }
}

/// What became of a thing a source handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// It became events (or a capture); the detail lists them.
    Mapped,
    /// Acknowledged, never routed (a type no kind is configured for).
    Ignored,
    /// It could not become an event; the detail says why.
    Invalid,
}

impl ReceiptStatus {
    /// The name stored in the ledger and shown by `GET /v1/receipts`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mapped => "mapped",
            Self::Ignored => "ignored",
            Self::Invalid => "invalid",
        }
    }
}

/// One thing a source handed over (a webhook, a message), as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub source: String,
    /// The source's own id for it: `evt_…`, `X-Shopify-Webhook-Id`, a Segment `messageId`.
    pub receipt_id: String,
    /// Stripe event type, Shopify topic, Segment message type or event name.
    pub topic: String,
    pub status: ReceiptStatus,
    /// The event ids it became, or why it was ignored or invalid.
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

/// How a delivery was planned at ingest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedDelivery {
    pub destination: String,
    pub state: DeliveryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// How one delivery ends up after an attempt (computed by the worker, written by the store).
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryUpdate {
    pub delivery_id: i64,
    pub state: DeliveryState,
    pub reason: Option<String>,
    pub messages: Vec<String>,
    /// For `Pending`: when to try again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Whether this counts as an attempt (a refusal before sending does not).
    pub attempted: bool,
    /// The attempt's outcome as recorded in the attempt log (`delivered`, `retry`, …).
    pub outcome: AttemptOutcome,
    pub detail: Option<String>,
    pub payload_sha256: Option<String>,
    /// Index into the recording's `requests`.
    pub request: Option<usize>,
    /// The attempt belongs to a forced replay.
    pub forced: bool,
}

/// One worker's results for a batch: the requests made and what became of each delivery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchRecord {
    pub destination: String,
    /// The lease owner recording: a delivery another worker has claimed since (this one's lease
    /// ran out) keeps its new owner's state; the attempt is still logged.
    pub owner: String,
    pub requests: Vec<RequestRecord>,
    pub updates: Vec<DeliveryUpdate>,
    /// Requests to ask the platform about later: (index into `requests`, platform request id,
    /// when to ask).
    pub follow_ups: Vec<(usize, String, DateTime<Utc>)>,
}

/// A request whose processing result is due to be asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueFollowUp {
    pub request_id: i64,
    pub platform_request_id: String,
    /// When the request was sent: how long the platform has had to answer.
    pub sent_at: DateTime<Utc>,
}

/// What crash recovery did at start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Claimed but never sent: back to pending.
    pub released: u64,
    /// Maybe sent; the platform dedupes on our id: re-sent.
    pub resent: u64,
    /// Maybe sent; no dedupe: `in_doubt` for a person to settle.
    pub in_doubt: u64,
}
