//! The CPU-heavy part of ingest, shared by both stores: each event's content hash, its plan and
//! its stored body, worked out before (and outside) the transaction.

use crate::core::plan::{Planned, Planner};
use crate::core::Event;
use crate::store::StoreError;

/// An event ready to store, with what can be worked out before the transaction: its content
/// hash, its plan and its stored body (both redone in the transaction only if the identity
/// bridge adds to it).
pub(crate) struct EventToStore {
    pub(crate) event: Event,
    pub(crate) hash: String,
    pub(crate) planned: Vec<Planned>,
    pub(crate) body: String,
}

/// Hashes, plans and encodes each event; done off the writer (or connection) so it runs on every core.
pub(crate) fn prepare(events: Vec<Event>, planner: &Planner) -> Result<Vec<EventToStore>, StoreError> {
    events
        .into_iter()
        .map(|event| {
            Ok(EventToStore {
                hash: event.content_hash(),
                planned: planner.plan(&event, event.received_at),
                body: serde_json::to_string(&event)?,
                event,
            })
        })
        .collect()
}
