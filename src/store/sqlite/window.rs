//! `Store::window_page` on SQLite: the events of a time window, a page at a time, with their
//! deliveries (what `surety reconcile` reads).

use rusqlite::{params, Connection};

use super::{from_us, to_us};
use crate::core::DeliveryState;
use crate::store::views::window_entries;
use crate::store::{LedgerDelivery, LedgerEntry, StoreError, WindowPage};

// `+occurred_at`: keep walking the primary key a page at a time. With events_occurred the
// planner could range over the window and sort it again for every page.
pub(super) fn window_page(conn: &Connection, p: &WindowPage) -> Result<Vec<LedgerEntry>, StoreError> {
    let (since, until, limit) = (to_us(p.since), to_us(p.until), p.limit.max(1) as i64);
    let events = conn
        .prepare_cached(
            "SELECT seq, body FROM events WHERE seq > ?1 AND +occurred_at >= ?2 AND +occurred_at < ?3 \
             ORDER BY seq LIMIT ?4",
        )?
        .query_map(params![p.after_seq, since, until, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<(i64, String)>, _>>()?;
    let Some(&(last, _)) = events.last() else { return Ok(Vec::new()) };
    let deliveries = conn
        .prepare_cached(
            "SELECT d.event_id, d.state, d.destination, d.dest_event, d.reason, d.created_at \
             FROM events e JOIN deliveries d ON d.event_id = e.event_id \
             WHERE e.seq > ?1 AND e.seq <= ?2 AND +e.occurred_at >= ?3 AND +e.occurred_at < ?4",
        )?
        .query_map(params![p.after_seq, last, since, until], delivery_row)?
        .collect::<Result<Vec<_>, _>>()?;
    window_entries(events, deliveries)
}

/// One row of `SELECT d.event_id, d.state, d.destination, d.dest_event, d.reason, d.created_at`:
/// the event id, the state as stored (`window_entries` parses it), and the delivery.
pub(super) fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, LedgerDelivery)> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        LedgerDelivery {
            destination: r.get(2)?,
            dest_event: r.get(3)?,
            state: DeliveryState::Pending,
            reason: r.get(4)?,
            created_at: from_us(r.get(5)?),
        },
    ))
}
