//! `Store::intake` on PostgreSQL: a message's captures, aliases, events and receipts in one
//! transaction. The pieces are `ingest::{capture_in, aliases_in, ingest_in, receipts_in}`, each
//! inside the caller's transaction; what is added is the lock order: every identity-wait lock
//! the message needs is taken first, in key order (exclusive for a capture's subjects, shared for
//! an event that may wait), so two messages sharing subjects wait for each other, never deadlock.
//! Later requests for a lock the transaction already holds return at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{PgConnection, PgPool};

use super::ingest::{aliases_in, capture_in, capture_subjects, ingest_in, prepare_off_thread, receipts_in, wait_lock};
use crate::core::delivery::reason;
use crate::core::plan::Planner;
use crate::store::intake::mapped_detail;
use crate::store::prepare::EventToStore;
use crate::store::search::intake_keys;
use crate::store::{Intake, IntakeResult, StoreError};

pub(super) async fn intake(pool: &PgPool, intake: Intake, planner: Arc<Planner>) -> Result<IntakeResult, StoreError> {
    let Intake { at, mut captures, mut aliases, events, mut receipts, mapped } = intake;
    let keys = intake_keys(&captures, events.iter(), mapped.as_ref());
    let prepared = prepare_off_thread(events, &planner).await?;
    // Bridge rows are locked in subject order; a subject's own captures keep their order.
    captures.sort_by(|a, b| (&a.subject.kind, &a.subject.id).cmp(&(&b.subject.kind, &b.subject.id)));
    let mut tx = pool.begin().await?;
    let mut exclusive = Vec::new();
    for capture in &captures {
        exclusive.extend(capture_subjects(&mut tx, &capture.subject).await?.iter().map(wait_lock));
    }
    lock_first(&mut tx, &exclusive, &prepared).await?;
    let mut replanned = Vec::new();
    for capture in &captures {
        replanned.extend(capture_in(&mut tx, capture, &planner, at).await?);
    }
    aliases_in(&mut tx, &mut aliases, at).await?;
    let events = if prepared.is_empty() { Vec::new() } else { ingest_in(&mut tx, &prepared, &planner).await? };
    if let Some(mut receipt) = mapped {
        receipt.detail = Some(mapped_detail(&events));
        receipts.push(receipt);
    }
    receipts_in(&mut tx, &receipts).await?;
    super::search::record_keys(&mut tx, &keys, at).await?;
    tx.commit().await?;
    Ok(IntakeResult { events, replanned })
}

/// Takes the message's wait locks in key order: exclusive where a capture re-plans the subject,
/// shared where an event may wait for identity.
async fn lock_first(tx: &mut PgConnection, exclusive: &[i64], prepared: &[EventToStore]) -> Result<(), StoreError> {
    let mut keys: BTreeMap<i64, bool> = exclusive.iter().map(|k| (*k, true)).collect();
    for p in prepared.iter().filter(|p| p.planned.iter().any(|d| d.reason == Some(reason::AWAITING_IDENTITY))) {
        keys.entry(wait_lock(&p.event.subject)).or_insert(false);
    }
    for (key, exclusive) in keys {
        let sql =
            if exclusive { "SELECT pg_advisory_xact_lock($1)" } else { "SELECT pg_advisory_xact_lock_shared($1)" };
        sqlx::query(sql).bind(key).execute(&mut *tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
