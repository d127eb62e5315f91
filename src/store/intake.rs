//! One received message as the ledger commits it (`Store::intake`): every piece of it — identity
//! captures, aliases, events, receipts — in one transaction, so a crash between the pieces cannot
//! leave half of what the message meant.

use chrono::{DateTime, Utc};

use super::{IngestResult, PlannedDelivery, Receipt};
use crate::core::{Event, IdentityCapture, Subject};

/// What one message (a webhook, a Segment batch, a `POST /v1/events`) asks the ledger to keep.
#[derive(Clone, Debug, Default)]
pub struct Intake {
    /// When it was received: the captures' `received_at`, and the clock their re-planning reads.
    pub at: DateTime<Utc>,
    /// Identity captures, applied first and in order, so the message's own events join them.
    pub captures: Vec<IdentityCapture>,
    /// Other names for subjects (`stripe:pi_…` → `order:1042`); the first one recorded stays.
    pub aliases: Vec<(String, Subject)>,
    /// Deduplicated by `event_id`, joined from the identity bridge and planned, as `Store::ingest`.
    pub events: Vec<Event>,
    /// Receipts recorded as they are.
    pub receipts: Vec<Receipt>,
    /// A receipt whose detail the store writes as what the events became (`evt_1 accepted, …`),
    /// known only inside the transaction.
    pub mapped: Option<Receipt>,
}

/// What the ledger made of an [`Intake`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntakeResult {
    /// One per event, in input order.
    pub events: Vec<IngestResult>,
    /// Deliveries the captures re-planned (they were awaiting this identity).
    pub replanned: Vec<PlannedDelivery>,
}

/// The detail of a `mapped` receipt: each event id and what became of it.
pub(super) fn mapped_detail(results: &[IngestResult]) -> String {
    results.iter().map(|r| format!("{} {}", r.event_id, r.status.as_str())).collect::<Vec<_>>().join(", ")
}
