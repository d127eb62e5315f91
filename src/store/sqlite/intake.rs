//! `Store::intake` on SQLite: a message's captures, aliases, events and receipts run as one
//! writer job, so they share one savepoint of one transaction — all of them commit, or none.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::ingest::{self, EventToStore};
use super::queries;
use crate::core::plan::Planner;
use crate::core::{IdentityCapture, Subject};
use crate::store::intake::mapped_detail;
use crate::store::search::intake_keys;
use crate::store::{IntakeResult, Receipt, StoreError};

/// An [`crate::store::Intake`] with its events already hashed and planned (off the writer).
pub(super) struct Parts {
    pub at: DateTime<Utc>,
    pub captures: Vec<IdentityCapture>,
    pub aliases: Vec<(String, Subject)>,
    pub events: Vec<EventToStore>,
    pub receipts: Vec<Receipt>,
    pub mapped: Option<Receipt>,
}

pub(super) fn intake(conn: &Connection, parts: Parts, planner: &Planner) -> Result<IntakeResult, StoreError> {
    let Parts { at, captures, aliases, events, receipts, mapped } = parts;
    let keys = intake_keys(&captures, events.iter().map(|e| &e.event), mapped.as_ref());
    let mut replanned = Vec::new();
    for capture in &captures {
        replanned.extend(ingest::capture_identity(conn, capture, planner, at)?);
    }
    queries::record_aliases(conn, &aliases, at)?;
    let events = if events.is_empty() { Vec::new() } else { ingest::ingest(conn, events, planner)? };
    for receipt in &receipts {
        queries::record_receipt(conn, receipt)?;
    }
    if let Some(mut receipt) = mapped {
        receipt.detail = Some(mapped_detail(&events));
        queries::record_receipt(conn, &receipt)?;
    }
    super::search::record_keys(conn, &keys, at)?;
    Ok(IntakeResult { events, replanned })
}
