//! Follow-ups: asking a platform, after the fact, what it made of a request it took for
//! processing, and settling that request's deliveries by the answer.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::{from_us, to_us};
use crate::core::FollowUp;
use crate::store::{DueFollowUp, StoreError};

pub(super) fn due(
    conn: &Connection,
    destination: &str,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<DueFollowUp>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, platform_request_id, sent_at FROM requests WHERE destination = ?1 \
             AND follow_up_at IS NOT NULL AND follow_up_at <= ?2 ORDER BY follow_up_at LIMIT ?3",
        )?
        .query_map(params![destination, to_us(now), limit as i64], |r| {
            Ok(DueFollowUp { request_id: r.get(0)?, platform_request_id: r.get(1)?, sent_at: from_us(r.get(2)?) })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn record(
    conn: &Connection,
    request_id: i64,
    answer: &FollowUp,
    again: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (summary, settle) = crate::store::rules::follow_up_settlement(answer);
    let next = if settle.is_some() { None } else { again.map(to_us) };
    conn.prepare_cached("UPDATE requests SET follow_up = ?2, follow_up_at = ?3 WHERE id = ?1")?
        .execute(params![request_id, summary, next])?;
    let Some((state, reason, messages)) = settle else {
        return Ok(());
    };
    let messages = (!messages.is_empty()).then(|| serde_json::to_string(&messages)).transpose()?;
    // The deliveries this request delivered (and that were not replayed since).
    let ids: Vec<(i64, u32)> = conn
        .prepare_cached(
            "SELECT d.id, d.attempt_base + d.attempts FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
             WHERE a.request_id = ?1 AND a.outcome = 'delivered' AND d.state = 'delivered'",
        )?
        .query_map([request_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (id, attempts) in ids {
        conn.prepare_cached(
            "UPDATE deliveries SET state = ?2, reason = ?3, messages = coalesce(?4, messages), updated_at = ?5 \
             WHERE id = ?1",
        )?
        .execute(params![id, state.as_str(), reason, messages, to_us(now)])?;
        conn.prepare_cached(
            "INSERT INTO attempts (delivery_id, request_id, attempt, at, outcome, detail) \
             VALUES (?1, ?2, ?3, ?4, 'follow_up', ?5)",
        )?
        .execute(params![id, request_id, attempts, to_us(now), summary])?;
    }
    Ok(())
}
