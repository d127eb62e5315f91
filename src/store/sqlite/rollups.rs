//! The day rollups' ledger reads and writes on SQLite (`store::rollups`, ADR 0008). Writes run
//! inside the writer's transaction.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection};

use super::{from_us, to_us};
use crate::store::views::window_entries;
use crate::store::{
    day_number, day_of_number, ChangedDay, DayRollup, LedgerChanges, LedgerEntry, StoreError, TimePage,
};

/// The UTC day number of an `occurred_at` column (floor division; SQLite's `/` truncates).
pub(super) const DAY_OF: &str = "((o / 86400000000) - (o < 0 AND o % 86400000000 != 0))";

pub(super) fn time_page(conn: &Connection, p: &TimePage) -> Result<Vec<LedgerEntry>, StoreError> {
    let col = p.column.column();
    let (since, until, limit) = (to_us(p.since), to_us(p.until), p.limit.max(1) as i64);
    // Before the first row: the range's start and no seq.
    let (after_t, after_seq) = p.after.map_or((since, i64::MIN), |(t, s)| (to_us(t), s));
    let rows = conn
        .prepare_cached(&format!(
            "SELECT seq, body, {col} FROM events WHERE {col} >= ?1 AND {col} < ?2 AND ({col}, seq) > (?3, ?4) \
             ORDER BY {col}, seq LIMIT ?5"
        ))?
        .query_map(params![since, until, after_t, after_seq, limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<Vec<(i64, String, i64)>, _>>()?;
    let Some(&(last_seq, _, last_t)) = rows.last() else { return Ok(Vec::new()) };
    let deliveries = conn
        .prepare_cached(&format!(
            "SELECT d.event_id, d.state, d.destination, d.dest_event, d.reason, d.created_at \
             FROM events e JOIN deliveries d ON d.event_id = e.event_id \
             WHERE e.{col} >= ?1 AND e.{col} < ?2 AND (e.{col}, e.seq) > (?3, ?4) AND (e.{col}, e.seq) <= (?5, ?6)"
        ))?
        .query_map(params![since, until, after_t, after_seq, last_t, last_seq], super::window::delivery_row)?
        .collect::<Result<Vec<_>, _>>()?;
    window_entries(rows.into_iter().map(|(seq, body, _)| (seq, body)).collect(), deliveries)
}

pub(super) fn day_rollups(conn: &Connection, from: NaiveDate, until: NaiveDate) -> Result<Vec<DayRollup>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT day, computed_at, through_seq, body FROM day_rollups WHERE day >= ?1 AND day < ?2 ORDER BY day",
        )?
        .query_map(params![day_number(from), day_number(until)], |r| {
            Ok(DayRollup {
                day: day_of_number(r.get(0)?),
                computed_at: from_us(r.get(1)?),
                through_seq: r.get(2)?,
                body: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn put_day_rollups(
    conn: &Connection,
    rows: &[DayRollup],
    (from, until, at, seq): (NaiveDate, NaiveDate, DateTime<Utc>, i64),
) -> Result<(), StoreError> {
    for r in rows {
        conn.prepare_cached(
            "INSERT INTO day_rollups (day, computed_at, through_seq, body) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (day) DO UPDATE SET computed_at = ?2, through_seq = ?3, body = ?4",
        )?
        .execute(params![day_number(r.day), to_us(r.computed_at), r.through_seq, r.body])?;
    }
    conn.prepare_cached("UPDATE day_rollups SET computed_at = ?3, through_seq = ?4 WHERE day >= ?1 AND day < ?2")?
        .execute(params![day_number(from), day_number(until), to_us(at), seq])?;
    conn.prepare_cached("DELETE FROM day_rollups WHERE day < ?1")?.execute([day_number(from)])?;
    Ok(())
}

/// Every branch is a range scan of an index: the primary key, events_received, events_changed,
/// and — pinned, since the planner would otherwise pick deliveries_state and walk every ended
/// delivery — deliveries_ended, deliveries_skipped; replays_at.
fn changed_sql() -> String {
    format!(
        "SELECT {DAY_OF} AS day, max(s), max(t) FROM ( \
           SELECT occurred_at AS o, seq AS s, received_at AS t FROM events WHERE seq > ?1 \
           UNION ALL SELECT occurred_at, seq, received_at FROM events WHERE received_at >= ?2 \
           UNION ALL SELECT occurred_at, seq, changed_at FROM events WHERE changed_at >= ?2 \
           UNION ALL SELECT e.occurred_at, e.seq, d.updated_at FROM deliveries d INDEXED BY deliveries_ended \
             JOIN events e ON e.event_id = d.event_id \
             WHERE d.state IN ('delivered', 'rejected', 'dead', 'in_doubt') AND d.updated_at >= ?2 \
           UNION ALL SELECT e.occurred_at, e.seq, d.updated_at FROM deliveries d INDEXED BY deliveries_skipped \
             JOIN events e ON e.event_id = d.event_id WHERE d.state = 'skipped' AND d.updated_at >= ?2 \
           UNION ALL SELECT e.occurred_at, e.seq, r.at FROM replays r JOIN deliveries d ON d.id = r.delivery_id \
             JOIN events e ON e.event_id = d.event_id WHERE r.at >= ?2 \
         ) GROUP BY day ORDER BY day"
    )
}

pub(super) fn changed_days(
    conn: &Connection,
    after_seq: i64,
    since: DateTime<Utc>,
) -> Result<LedgerChanges, StoreError> {
    let max_seq: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))?;
    let sql = changed_sql();
    let days = conn
        .prepare_cached(&sql)?
        .query_map(params![after_seq, to_us(since)], |r| {
            Ok(ChangedDay { day: day_of_number(r.get(0)?), max_seq: r.get(1)?, last_at: from_us(r.get(2)?) })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(LedgerChanges { max_seq, days })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_branch_of_changed_days_range_scans_an_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", changed_sql()))
            .unwrap()
            .query_map(params![0i64, 0i64], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        for index in [
            "SEARCH events USING INTEGER PRIMARY KEY (rowid>?)",
            "SEARCH events USING INDEX events_received (received_at>?)",
            "SEARCH events USING INDEX events_changed (changed_at>?)",
            "SEARCH d USING INDEX deliveries_ended (updated_at>?)",
            "SEARCH d USING INDEX deliveries_skipped (updated_at>?)",
            "SEARCH r USING INDEX replays_at (at>?)",
        ] {
            assert!(plan.contains(index), "{index} in {plan}");
        }
        let scans: Vec<&str> = plan.lines().filter(|l| l.starts_with("SCAN ") && !l.contains("subquery")).collect();
        assert!(scans.is_empty(), "no table scan: {plan}");
    }
}
