//! Follow-ups on PostgreSQL: asking a platform, after the fact, what it made of a request it took
//! for processing, and settling that request's deliveries by the answer (as `store::sqlite`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::{from_us, to_us};
use crate::core::FollowUp;
use crate::store::{DueFollowUp, StoreError};

/// How long a process that took a due follow-up has to record its answer before another process
/// may ask again (it is then asked again, which is harmless).
const FOLLOW_UP_LEASE_SECS: i64 = 60;

/// The due follow-ups, each taken for [`FOLLOW_UP_LEASE_SECS`]: its `follow_up_at` moves past the
/// lease in the same statement (`SKIP LOCKED`), so processes sharing the ledger do not ask the
/// platform about the same request at once; `record` then sets the real next time.
pub(super) async fn due(
    pool: &PgPool,
    destination: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<DueFollowUp>, StoreError> {
    let mut rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "UPDATE requests SET follow_up_at = $4 WHERE id IN ( \
             SELECT id FROM requests WHERE destination = $1 AND follow_up_at IS NOT NULL AND follow_up_at <= $2 \
             ORDER BY follow_up_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, platform_request_id, sent_at, follow_up_at",
    )
    .bind(destination)
    .bind(to_us(now))
    .bind(limit as i64)
    .bind(to_us(now + chrono::Duration::seconds(FOLLOW_UP_LEASE_SECS)))
    .fetch_all(pool)
    .await?;
    rows.sort_by_key(|r| r.0);
    Ok(rows
        .into_iter()
        .map(|(request_id, platform_request_id, sent_at, _)| DueFollowUp {
            request_id,
            platform_request_id,
            sent_at: from_us(sent_at),
        })
        .collect())
}

pub(super) async fn record(
    pool: &PgPool,
    request_id: i64,
    answer: FollowUp,
    again: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (summary, settle) = crate::store::rules::follow_up_settlement(&answer);
    let now_us = to_us(now);
    let next = if settle.is_some() { None } else { again.map(to_us) };
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE requests SET follow_up = $2, follow_up_at = $3 WHERE id = $1")
        .bind(request_id)
        .bind(&summary)
        .bind(next)
        .execute(&mut *tx)
        .await?;
    let Some((state, reason, messages)) = settle else {
        tx.commit().await?;
        return Ok(());
    };
    let messages = (!messages.is_empty()).then(|| serde_json::to_string(&messages)).transpose()?;
    // The deliveries this request delivered (and that were not replayed since), locked in id
    // order so a concurrent replay of them waits rather than deadlocks.
    let ids: Vec<(i64, i32)> = sqlx::query_as(
        "SELECT d.id, d.attempt_base + d.attempts FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
         WHERE a.request_id = $1 AND a.outcome = 'delivered' AND d.state = 'delivered' ORDER BY d.id FOR UPDATE OF d",
    )
    .bind(request_id)
    .fetch_all(&mut *tx)
    .await?;
    for (id, attempts) in ids {
        sqlx::query(
            "UPDATE deliveries SET state = $2, reason = $3, messages = coalesce($4, messages), updated_at = $5 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(reason)
        .bind(&messages)
        .bind(now_us)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO attempts (delivery_id, request_id, attempt, at, outcome, detail) \
             VALUES ($1, $2, $3, $4, 'follow_up', $5)",
        )
        .bind(id)
        .bind(request_id)
        .bind(attempts)
        .bind(now_us)
        .bind(&summary)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests;
