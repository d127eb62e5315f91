//! Reconcile reports kept in the ledger on PostgreSQL (`store::reconciles`): the report in a
//! JSONB column, handed over and read back as text.

use sqlx::postgres::PgPool;
use sqlx::Row as _;

use super::{from_us, to_us};
use crate::store::reconciles::{count_column, count_value, ReconcileRecord, StoredReconcile, KEPT};
use crate::store::StoreError;

/// Keeps `r` and deletes all but the newest [`KEPT`], in one transaction.
pub(super) async fn record(pool: &PgPool, r: &ReconcileRecord) -> Result<i64, StoreError> {
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO reconcile_reports (recorded_at, recorded_by, window_since, window_until, unexplained, \
         explained, report) VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING id",
    )
    .bind(to_us(r.recorded_at))
    .bind(&r.recorded_by)
    .bind(to_us(r.since))
    .bind(to_us(r.until))
    .bind(count_column(r.unexplained))
    .bind(count_column(r.explained))
    .bind(&r.report)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM reconcile_reports WHERE id NOT IN (SELECT id FROM reconcile_reports ORDER BY id DESC LIMIT $1)",
    )
    .bind(KEPT as i64)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// The newest `limit` reports, newest first.
pub(super) async fn recent(pool: &PgPool, limit: usize) -> Result<Vec<StoredReconcile>, StoreError> {
    sqlx::query(
        "SELECT id, recorded_at, recorded_by, window_since, window_until, unexplained, explained, report::text \
         FROM reconcile_reports ORDER BY id DESC LIMIT $1",
    )
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(StoredReconcile {
            id: r.try_get(0)?,
            record: ReconcileRecord {
                recorded_at: from_us(r.try_get(1)?),
                recorded_by: r.try_get(2)?,
                since: from_us(r.try_get(3)?),
                until: from_us(r.try_get(4)?),
                unexplained: count_value(r.try_get(5)?),
                explained: count_value(r.try_get(6)?),
                report: r.try_get(7)?,
            },
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::store::postgres::{create_database, testdb, PgStore};
    use crate::store::Store;

    fn report(n: i64) -> ReconcileRecord {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        ReconcileRecord {
            recorded_at: at + Duration::minutes(n),
            recorded_by: format!("admin token #{n}"),
            since: at - Duration::days(1),
            until: at,
            unexplained: n as u64,
            explained: 2,
            report: format!("{{\"n\": {n}}}"),
        }
    }

    #[tokio::test]
    async fn a_report_recorded_through_one_store_is_the_latest_the_other_sees() {
        let url = create_database(&testdb::admin_url(), "surety_unit").await.expect("a test database");
        let a = PgStore::connect(&url).await.unwrap();
        let b = PgStore::connect(&url).await.unwrap();
        assert!(b.reconciles(1).await.unwrap().is_empty());
        a.record_reconcile(report(1)).await.unwrap();
        let seen = b.reconciles(1).await.unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].record, report(1), "read back as written, the JSON body too");
        b.record_reconcile(report(2)).await.unwrap();
        assert_eq!(a.reconciles(1).await.unwrap()[0].record.recorded_by, "admin token #2");
    }

    #[tokio::test]
    async fn only_the_newest_fifty_are_kept() {
        let store = testdb::fresh().await;
        for n in 1..=55 {
            store.record_reconcile(report(n)).await.unwrap();
        }
        let kept = store.reconciles(100).await.unwrap();
        assert_eq!(kept.len(), KEPT);
        assert_eq!(kept[0].record.unexplained, 55);
        assert_eq!(kept.last().unwrap().record.unexplained, 6, "the five oldest are gone");
    }
}
