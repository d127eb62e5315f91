//! A person's settlement of a delivery that waited for one, on PostgreSQL: same rules and
//! records as `store::sqlite::settle`; the row is locked, so a concurrent replay or second
//! settlement sees the outcome of the first.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Row};

use super::{from_us, to_us};
use crate::core::delivery::reason;
use crate::store::{SettleOutcome, Settlement, SettlementView, StoreError};

pub(super) async fn settle(pool: &PgPool, s: Settlement, now: DateTime<Utc>) -> Result<SettleOutcome, StoreError> {
    let mut tx = pool.begin().await?;
    let row: Option<(String, Option<String>, String)> =
        sqlx::query_as("SELECT state, reason, destination FROM deliveries WHERE id = $1 FOR UPDATE")
            .bind(s.delivery_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((state, previous_reason, destination)) = row else {
        return Ok(SettleOutcome::NotFound);
    };
    let previous = state.parse().map_err(StoreError::Corrupt)?;
    let state = match crate::store::rules::settled_state(previous, s.settled_as) {
        Ok(state) => state,
        Err(why) => return Ok(SettleOutcome::Refused { state: previous, reason: previous_reason, why }),
    };
    let now_us = to_us(now);
    sqlx::query(
        "UPDATE deliveries SET state = $2, reason = $3, next_attempt_at = NULL, lease_owner = NULL, \
         lease_until = NULL, forced = FALSE, updated_at = $4 WHERE id = $1",
    )
    .bind(s.delivery_id)
    .bind(state.as_str())
    .bind(reason::SETTLED_BY_PERSON)
    .bind(now_us)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO settlements (delivery_id, at, settled_as, settled_by, note, previous_state, previous_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.delivery_id)
    .bind(now_us)
    .bind(s.settled_as.as_str())
    .bind(&s.by)
    .bind(&s.note)
    .bind(previous.as_str())
    .bind(&previous_reason)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let settlement = SettlementView {
        delivery_id: s.delivery_id,
        at: from_us(now_us),
        settled_as: s.settled_as,
        by: s.by,
        note: s.note,
        previous_state: previous.as_str().to_owned(),
        previous_reason,
    };
    Ok(SettleOutcome::Settled { destination, state, settlement })
}

/// The settlements of one event's deliveries, oldest first.
pub(super) async fn of_event(conn: &mut PgConnection, event_id: &str) -> Result<Vec<SettlementView>, StoreError> {
    sqlx::query(
        "SELECT s.delivery_id, s.at, s.settled_as, s.settled_by, s.note, s.previous_state, s.previous_reason \
         FROM settlements s JOIN deliveries d ON d.id = s.delivery_id WHERE d.event_id = $1 ORDER BY s.id",
    )
    .bind(event_id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(SettlementView {
            delivery_id: r.try_get(0)?,
            at: from_us(r.try_get(1)?),
            settled_as: r.try_get::<String, _>(2)?.parse().map_err(StoreError::Corrupt)?,
            by: r.try_get(3)?,
            note: r.try_get(4)?,
            previous_state: r.try_get(5)?,
            previous_reason: r.try_get(6)?,
        })
    })
    .collect()
}
