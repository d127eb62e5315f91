//! Request bodies past `[ledger] keep_request_bodies_days`: dropped, their hash kept.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::to_us;
use crate::store::StoreError;

pub(super) fn prune_request_bodies(conn: &Connection, before: DateTime<Utc>, batch: usize) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE requests SET body = NULL WHERE id IN (SELECT id FROM requests WHERE body IS NOT NULL \
             AND sent_at < ?1 LIMIT ?2)",
        )?
        .execute(params![to_us(before), batch.max(1) as i64])?;
    Ok(n as u64)
}
