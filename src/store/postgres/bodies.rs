//! Request bodies past `[ledger] keep_request_bodies_days`: dropped, their hash kept.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use super::to_us;
use crate::store::StoreError;

pub(super) async fn prune_request_bodies(
    pool: &PgPool,
    before: DateTime<Utc>,
    batch: usize,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE requests SET body = NULL WHERE id IN (SELECT id FROM requests WHERE body IS NOT NULL \
         AND sent_at < $1 LIMIT $2)",
    )
    .bind(to_us(before))
    .bind(batch.max(1) as i64)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
