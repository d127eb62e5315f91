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
    /// Deduplicated by `event_id`, joined from the identity bridge and planned.
    pub events: Vec<Event>,
    /// Receipts recorded as they are.
    pub receipts: Vec<Receipt>,
    /// A receipt whose detail the store writes as what the events became (`evt_1 accepted, …`),
    /// known only inside the transaction.
    pub mapped: Option<Receipt>,
}

impl Intake {
    /// Events alone (a `POST /v1/events` body, an import batch), received at `at`.
    pub fn of_events(at: DateTime<Utc>, events: Vec<Event>) -> Self {
        Self { at, events, ..Self::default() }
    }

    /// One identity capture alone, received at `at`. It merges into the subject's bridge entry
    /// (fields merge; history is kept) and re-plans the deliveries `awaiting_identity` of the
    /// capture's subject and of the subject it is an alias of (`IntakeResult::replanned`).
    pub fn of_capture(at: DateTime<Utc>, capture: IdentityCapture) -> Self {
        Self { at, captures: vec![capture], ..Self::default() }
    }

    /// Other names for subjects alone, recorded at `at`; the first one recorded stays.
    pub fn of_aliases(at: DateTime<Utc>, aliases: Vec<(String, Subject)>) -> Self {
        Self { at, aliases, ..Self::default() }
    }
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
