//! `Store::window_page` on PostgreSQL: the same page as `store::sqlite::window`, read in one
//! snapshot.

use sqlx::{PgPool, Row};

use super::{from_us, to_us};
use crate::core::DeliveryState;
use crate::store::views::window_entries;
use crate::store::{LedgerDelivery, LedgerEntry, StoreError, WindowPage};

pub(super) async fn window_page(pool: &PgPool, p: &WindowPage) -> Result<Vec<LedgerEntry>, StoreError> {
    let (since, until, limit) = (to_us(p.since), to_us(p.until), p.limit.max(1) as i64);
    let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let events = sqlx::query(
        "SELECT seq, body FROM events WHERE seq > $1 AND occurred_at >= $2 AND occurred_at < $3 ORDER BY seq LIMIT $4",
    )
    .bind(p.after_seq)
    .bind(since)
    .bind(until)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)))
    .collect::<Result<Vec<_>, StoreError>>()?;
    let Some(&(last, _)) = events.last() else { return Ok(Vec::new()) };
    let deliveries = sqlx::query(
        "SELECT d.event_id, d.state, d.destination, d.dest_event, d.reason, d.created_at \
         FROM events e JOIN deliveries d ON d.event_id = e.event_id \
         WHERE e.seq > $1 AND e.seq <= $2 AND e.occurred_at >= $3 AND e.occurred_at < $4",
    )
    .bind(p.after_seq)
    .bind(last)
    .bind(since)
    .bind(until)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(delivery_row)
    .collect::<Result<Vec<_>, StoreError>>()?;
    tx.commit().await?;
    window_entries(events, deliveries)
}

/// One row of `SELECT d.event_id, d.state, d.destination, d.dest_event, d.reason, d.created_at`:
/// the event id, the state as stored (`window_entries` parses it), and the delivery.
pub(super) fn delivery_row(r: &sqlx::postgres::PgRow) -> Result<(String, String, LedgerDelivery), StoreError> {
    Ok((
        r.try_get::<String, _>(0)?,
        r.try_get::<String, _>(1)?,
        LedgerDelivery {
            destination: r.try_get(2)?,
            dest_event: r.try_get(3)?,
            state: DeliveryState::Pending,
            reason: r.try_get(4)?,
            created_at: from_us(r.try_get(5)?),
        },
    ))
}
