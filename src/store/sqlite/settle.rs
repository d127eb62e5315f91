//! A person's settlement of a delivery that waited for one: the delivery ends without a send,
//! and who, when and why is recorded beside it.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::to_us;
use crate::core::delivery::reason;
use crate::store::{SettleOutcome, Settlement, SettlementView, StoreError};

pub(super) fn settle(conn: &Connection, s: &Settlement, now: DateTime<Utc>) -> Result<SettleOutcome, StoreError> {
    let row: Option<(String, Option<String>, String)> = conn
        .prepare_cached("SELECT state, reason, destination FROM deliveries WHERE id = ?1")?
        .query_row([s.delivery_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((state, previous_reason, destination)) = row else {
        return Ok(SettleOutcome::NotFound);
    };
    let previous = state.parse().map_err(StoreError::Corrupt)?;
    let state = match crate::store::rules::settled_state(previous, s.settled_as) {
        Ok(state) => state,
        Err(why) => return Ok(SettleOutcome::Refused { state: previous, reason: previous_reason, why }),
    };
    let now_us = to_us(now);
    conn.prepare_cached(
        "UPDATE deliveries SET state = ?2, reason = ?3, next_attempt_at = NULL, lease_owner = NULL, \
         lease_until = NULL, forced = 0, updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![s.delivery_id, state.as_str(), reason::SETTLED_BY_PERSON, now_us])?;
    conn.prepare_cached(
        "INSERT INTO settlements (delivery_id, at, settled_as, settled_by, note, previous_state, previous_reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        s.delivery_id,
        now_us,
        s.settled_as.as_str(),
        s.by,
        s.note,
        previous.as_str(),
        previous_reason
    ])?;
    let settlement = SettlementView {
        delivery_id: s.delivery_id,
        at: super::from_us(now_us),
        settled_as: s.settled_as,
        by: s.by.clone(),
        note: s.note.clone(),
        previous_state: previous.as_str().to_owned(),
        previous_reason,
    };
    Ok(SettleOutcome::Settled { destination, state, settlement })
}

/// The settlements of one event's deliveries, oldest first.
pub(super) fn of_event(conn: &Connection, event_id: &str) -> Result<Vec<SettlementView>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT s.delivery_id, s.at, s.settled_as, s.settled_by, s.note, s.previous_state, s.previous_reason \
             FROM settlements s JOIN deliveries d ON d.id = s.delivery_id WHERE d.event_id = ?1 ORDER BY s.id",
        )?
        .query_map([event_id], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(delivery_id, at, settled_as, by, note, previous_state, previous_reason)| {
            Ok(SettlementView {
                delivery_id,
                at: super::from_us(at),
                settled_as: settled_as.parse().map_err(StoreError::Corrupt)?,
                by,
                note,
                previous_state,
                previous_reason,
            })
        })
        .collect()
}
