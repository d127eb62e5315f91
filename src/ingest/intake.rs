//! Intake, one use case per source: what arrived (already authenticated, or verified on its raw
//! bytes) is mapped and parsed into canonical events and identity captures, and everything one
//! message means — captures, aliases, events and its receipt — is committed by one
//! `Store::intake`, so a crash cannot keep half of it. The HTTP handlers and the importer only
//! translate to and from these functions; none of them calls a destination.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

mod segment_batch;
mod webhook;

pub use self::segment_batch::{segment, MessageResult, Segment, MAX_LISTED};
pub use self::webhook::{shopify, stripe, Webhook};
use super::canonical::{parse_capture, parse_event};
use super::FieldError;
use crate::core::plan::Planner;
use crate::core::{DeliveryState, Event, Subject};
use crate::store::{IngestResult, IngestStatus, Intake, IntakeResult, Store, StoreError};
use crate::telemetry::{EventLabels, LatenessLabels, Metrics};

/// Where intake writes, and what it counts.
#[derive(Clone, Copy)]
pub struct Ledger<'a> {
    pub store: &'a dyn Store,
    pub planner: &'a Arc<Planner>,
    pub metrics: &'a Metrics,
}

/// `"field: message; …"`, for receipts, logs and problem details.
pub fn summary(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl Ledger<'_> {
    /// Commits `intake`, counts what it became, and says whether a delivery became due (the
    /// caller wakes the workers).
    pub(super) async fn commit(&self, intake: Intake) -> Result<(IntakeResult, bool), StoreError> {
        let kinds: Vec<(String, String)> =
            intake.events.iter().map(|e| (e.source.clone(), e.kind.to_string())).collect();
        let lateness: Vec<f64> = intake
            .events
            .iter()
            .map(|e| (e.received_at - e.occurred_at).num_milliseconds().max(0) as f64 / 1000.0)
            .collect();
        let result = self.store.intake(intake, self.planner.clone()).await?;
        let mut due = false;
        for d in &result.replanned {
            if d.state.is_ended() {
                self.metrics.delivery(&d.destination, d.state.as_str(), d.reason);
            }
            due |= d.state == DeliveryState::Pending;
        }
        for (((source, kind), r), late) in kinds.iter().zip(&result.events).zip(lateness) {
            if r.status == IngestStatus::Accepted {
                let labels = LatenessLabels { source: source.clone(), kind: kind.clone() };
                self.metrics.lateness.get_or_create(&labels).observe(late);
            }
            let status = match r.status {
                IngestStatus::Accepted if r.deliveries.is_empty() => "not_routed",
                s => s.as_str(),
            };
            self.count_event(source, kind, status);
            for d in &r.deliveries {
                due |= d.state == DeliveryState::Pending;
                // Only a new event's deliveries are new: a duplicate answers with the original's.
                if r.status == IngestStatus::Accepted {
                    self.metrics.planned(&d.destination);
                    if d.state.is_ended() {
                        self.metrics.delivery(&d.destination, d.state.as_str(), d.reason);
                    }
                }
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
