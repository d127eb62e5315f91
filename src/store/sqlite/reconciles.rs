//! Reconcile reports kept in the ledger on SQLite (`store::reconciles`).

use rusqlite::{params, Connection};

use super::{from_us, to_us};
use crate::store::reconciles::{count_column, count_value, ReconcileRecord, StoredReconcile, KEPT};
use crate::store::StoreError;

/// Keeps `r` and deletes all but the newest [`KEPT`], in the writer's transaction.
pub(super) fn record(conn: &Connection, r: &ReconcileRecord) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO reconcile_reports (recorded_at, recorded_by, window_since, window_until, unexplained, \
         explained, report) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        to_us(r.recorded_at),
        r.recorded_by,
        to_us(r.since),
        to_us(r.until),
        count_column(r.unexplained),
        count_column(r.explained),
        r.report
    ])?;
    let id = conn.last_insert_rowid();
    conn.prepare_cached(
        "DELETE FROM reconcile_reports WHERE id NOT IN (SELECT id FROM reconcile_reports ORDER BY id DESC LIMIT ?1)",
    )?
    .execute(params![KEPT as i64])?;
    Ok(id)
}

/// The newest `limit` reports, newest first.
pub(super) fn recent(conn: &Connection, limit: usize) -> Result<Vec<StoredReconcile>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT id, recorded_at, recorded_by, window_since, window_until, unexplained, explained, report \
             FROM reconcile_reports ORDER BY id DESC LIMIT ?1",
        )?
        .query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(StoredReconcile {
                id: r.get(0)?,
                record: ReconcileRecord {
                    recorded_at: from_us(r.get(1)?),
                    recorded_by: r.get(2)?,
                    since: from_us(r.get(3)?),
                    until: from_us(r.get(4)?),
                    unexplained: count_value(r.get(5)?),
                    explained: count_value(r.get(6)?),
                    report: r.get(7)?,
                },
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;

    fn report(n: i64) -> ReconcileRecord {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        ReconcileRecord {
            recorded_at: at + Duration::minutes(n),
            recorded_by: format!("cli:run{n}"),
            since: at - Duration::days(1),
            until: at,
            unexplained: n as u64,
            explained: 1,
            report: format!("{{\"n\":{n}}}"),
        }
    }

    #[test]
    fn the_newest_fifty_are_kept_and_read_newest_first() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        assert!(recent(&conn, 1).unwrap().is_empty());
        for n in 1..=60 {
            record(&conn, &report(n)).unwrap();
        }
        let kept = recent(&conn, 100).unwrap();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].record, report(60), "the latest first, read back as written");
        assert_eq!(kept.last().unwrap().record.recorded_by, "cli:run11", "the ten oldest are gone");
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM reconcile_reports", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 50);
        assert_eq!(recent(&conn, 1).unwrap()[0].record.recorded_by, "cli:run60");
    }
}
