//! Receipts and subject aliases on PostgreSQL, inside the caller's transaction, and resolving
//! an alias.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::core::Subject;
use crate::store::postgres::to_us;
use crate::store::{Receipt, StoreError};

/// Inserts each receipt or counts a redelivery of it; true the first time. Rows are written in
/// (source, receipt id) order so concurrent batches cannot deadlock; answers are in input order.
pub(in crate::store::postgres) async fn receipts_in(
    tx: &mut PgConnection,
    receipts: &[Receipt],
) -> Result<Vec<bool>, StoreError> {
    let mut ordered: Vec<(usize, &Receipt)> = receipts.iter().enumerate().collect();
    ordered.sort_by(|(_, a), (_, b)| (&a.source, &a.receipt_id).cmp(&(&b.source, &b.receipt_id)));
    let mut first = vec![false; receipts.len()];
    for (index, r) in ordered {
        let at = to_us(r.at);
        let times: i64 = sqlx::query_scalar(
            "INSERT INTO receipts (source, receipt_id, topic, status, detail, first_at, last_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (source, receipt_id) DO UPDATE SET times = receipts.times + 1, last_at = EXCLUDED.last_at \
             RETURNING times",
        )
        .bind(&r.source)
        .bind(&r.receipt_id)
        .bind(&r.topic)
        .bind(r.status.as_str())
        .bind(&r.detail)
        .bind(at)
        .fetch_one(&mut *tx)
        .await?;
        first[index] = times == 1;
    }
    Ok(first)
}

/// Remembers other names for subjects; the first one recorded for an alias stays. Inserted in
/// alias order (stable, so within a batch the first stated still wins) against deadlocks.
pub(in crate::store::postgres) async fn aliases_in(
    tx: &mut PgConnection,
    aliases: &mut [(String, Subject)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    aliases.sort_by(|(a, _), (b, _)| a.cmp(b));
    for (alias, subject) in aliases.iter() {
        sqlx::query(
            "INSERT INTO subject_aliases (alias, subject_type, subject_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (alias) DO NOTHING",
        )
        .bind(alias)
        .bind(&subject.kind)
        .bind(&subject.id)
        .bind(to_us(now))
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

pub(in crate::store::postgres) async fn resolve_alias(
    pool: &PgPool,
    alias: &str,
) -> Result<Option<Subject>, StoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT subject_type, subject_id FROM subject_aliases WHERE alias = $1")
            .bind(alias)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(kind, id)| Subject { kind, id }))
}
