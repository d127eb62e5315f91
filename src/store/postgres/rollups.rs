//! The day rollups' ledger reads and writes on PostgreSQL (`store::rollups`, ADR 0008): the same
//! queries as `store::sqlite::rollups`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, Row};

use super::{from_us, to_us};
use crate::store::views::window_entries;
use crate::store::{
    day_number, day_of_number, ChangedDay, DayRollup, LedgerChanges, LedgerEntry, StoreError, TimePage,
};

/// The UTC day number of an `occurred_at` column `o` (floor division).
pub(super) const DAY_OF: &str = "floor(o::numeric / 86400000000)::bigint";

pub(super) async fn time_page(pool: &PgPool, p: &TimePage) -> Result<Vec<LedgerEntry>, StoreError> {
    let col = p.column.column();
    let (since, until, limit) = (to_us(p.since), to_us(p.until), p.limit.max(1) as i64);
    let (after_t, after_seq) = p.after.map_or((since, i64::MIN), |(t, s)| (to_us(t), s));
    let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let rows = sqlx::query(&format!(
        "SELECT seq, body, {col} FROM events WHERE {col} >= $1 AND {col} < $2 AND ({col}, seq) > ($3, $4) \
         ORDER BY {col}, seq LIMIT $5"
    ))
    .bind(since)
    .bind(until)
    .bind(after_t)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)?)))
    .collect::<Result<Vec<_>, StoreError>>()?;
    let Some(&(last_seq, _, last_t)) = rows.last() else { return Ok(Vec::new()) };
    let deliveries = sqlx::query(&format!(
        "SELECT d.event_id, d.state, d.destination, d.dest_event, d.reason, d.created_at \
         FROM events e JOIN deliveries d ON d.event_id = e.event_id \
         WHERE e.{col} >= $1 AND e.{col} < $2 AND (e.{col}, e.seq) > ($3, $4) AND (e.{col}, e.seq) <= ($5, $6)"
    ))
    .bind(since)
    .bind(until)
    .bind(after_t)
    .bind(after_seq)
    .bind(last_t)
    .bind(last_seq)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(super::window::delivery_row)
    .collect::<Result<Vec<_>, StoreError>>()?;
    tx.commit().await?;
    window_entries(rows.into_iter().map(|(seq, body, _)| (seq, body)).collect(), deliveries)
}

pub(super) async fn day_rollups(
    pool: &PgPool,
    from: NaiveDate,
    until: NaiveDate,
) -> Result<Vec<DayRollup>, StoreError> {
    sqlx::query("SELECT day, computed_at, through_seq, body FROM day_rollups WHERE day >= $1 AND day < $2 ORDER BY day")
        .bind(day_number(from))
        .bind(day_number(until))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(DayRollup {
                day: day_of_number(r.try_get(0)?),
                computed_at: from_us(r.try_get(1)?),
                through_seq: r.try_get(2)?,
                body: r.try_get(3)?,
            })
        })
        .collect()
}

pub(super) async fn put_day_rollups(
    pool: &PgPool,
    rows: &[DayRollup],
    (from, until, at, seq): (NaiveDate, NaiveDate, DateTime<Utc>, i64),
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    for r in rows {
        sqlx::query(
            "INSERT INTO day_rollups (day, computed_at, through_seq, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (day) DO UPDATE SET computed_at = $2, through_seq = $3, body = $4",
        )
        .bind(day_number(r.day))
        .bind(to_us(r.computed_at))
        .bind(r.through_seq)
        .bind(&r.body)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE day_rollups SET computed_at = $3, through_seq = $4 WHERE day >= $1 AND day < $2")
        .bind(day_number(from))
        .bind(day_number(until))
        .bind(to_us(at))
        .bind(seq)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM day_rollups WHERE day < $1").bind(day_number(from)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn changed_days(
    pool: &PgPool,
    after_seq: i64,
    since: DateTime<Utc>,
) -> Result<LedgerChanges, StoreError> {
    let max_seq: i64 = sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM events").fetch_one(pool).await?;
    // Every branch is a range scan of an index: the primary key, events_received,
    // events_changed, deliveries_ended, deliveries_skipped, replays_at.
    let sql = format!(
        "SELECT {DAY_OF} AS day, max(s), max(t) FROM ( \
           SELECT occurred_at AS o, seq AS s, received_at AS t FROM events WHERE seq > $1 \
           UNION ALL SELECT occurred_at, seq, received_at FROM events WHERE received_at >= $2 \
           UNION ALL SELECT occurred_at, seq, changed_at FROM events WHERE changed_at >= $2 \
           UNION ALL SELECT e.occurred_at, e.seq, d.updated_at FROM deliveries d JOIN events e ON e.event_id = d.event_id \
             WHERE d.state IN ('delivered', 'rejected', 'dead', 'in_doubt') AND d.updated_at >= $2 \
           UNION ALL SELECT e.occurred_at, e.seq, d.updated_at FROM deliveries d JOIN events e ON e.event_id = d.event_id \
             WHERE d.state = 'skipped' AND d.updated_at >= $2 \
           UNION ALL SELECT e.occurred_at, e.seq, r.at FROM replays r JOIN deliveries d ON d.id = r.delivery_id \
             JOIN events e ON e.event_id = d.event_id WHERE r.at >= $2 \
         ) x GROUP BY day ORDER BY day"
    );
    let days = sqlx::query(&sql)
        .bind(after_seq)
        .bind(to_us(since))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ChangedDay {
                day: day_of_number(r.try_get(0)?),
                max_seq: r.try_get(1)?,
                last_at: from_us(r.try_get(2)?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(LedgerChanges { max_seq, days })
}
