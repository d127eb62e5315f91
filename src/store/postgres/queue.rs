//! The delivery queue on PostgreSQL: claims with leases, the "sending" mark, outcomes, recovery of
//! expired leases, replays. Same semantics as `store::sqlite::queue`; several processes share the
//! table, so every statement that picks rows to change skips rows another transaction holds
//! (`FOR UPDATE … SKIP LOCKED`) or locks them in id order, and no call ever waits in a cycle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{from_us, to_us};
use crate::core::delivery::reason;
use crate::core::plan::Planner;
use crate::core::{Claimed, DeliveryState, Event, Route};
use crate::store::{BatchRecord, Recovered, ReplayRefusal, ReplayReport, ReplaySelector, StoreError};

/// The route a delivery is sent with: the one stored with it, or (rows written without one) the
/// one its columns describe, as JSON either way.
const ROUTE_JSON: &str =
    "coalesce(route, json_build_object('event', dest_event, 'browser_tracked', browser_tracked)::text)";

/// Claims due deliveries for `destination`. Per subject and destination, deliveries go out in
/// event-time order: one waits while an earlier event of the same subject still has its delivery
/// to this destination pending or in flight, so a refund never overtakes its purchase. Rows
/// another process is claiming right now are skipped, never waited for or taken twice.
pub(super) async fn claim(
    pool: &PgPool,
    destination: &str,
    limit: usize,
    lease: Duration,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, StoreError> {
    let until = to_us(now) + lease.as_micros() as i64;
    let mut tx = pool.begin().await?;
    let sql = format!(
        "UPDATE deliveries SET state = 'claimed', lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT d.id FROM deliveries d JOIN events e ON e.event_id = d.event_id \
                      WHERE d.state = 'pending' AND d.destination = $4 AND d.next_attempt_at <= $3 \
                      AND NOT EXISTS (SELECT 1 FROM events e2 JOIN deliveries d2 ON d2.event_id = e2.event_id \
                                      WHERE e2.subject_type = e.subject_type AND e2.subject_id = e.subject_id \
                                      AND e2.occurred_at < e.occurred_at AND d2.destination = d.destination \
                                      AND d2.state IN ('pending', 'claimed', 'sending')) \
                      ORDER BY d.next_attempt_at, d.id LIMIT $5 \
                      FOR UPDATE OF d SKIP LOCKED) \
         RETURNING id, event_id, {ROUTE_JSON}, strip_personal, attempts, created_at, forced"
    );
    let rows: Vec<(i64, String, String, bool, i32, i64, bool)> = sqlx::query_as(&sql)
        .bind(owner)
        .bind(until)
        .bind(to_us(now))
        .bind(destination)
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
    let event_ids: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let mut events = load_events(&mut tx, &event_ids).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (delivery_id, event_id, route, strip_personal, attempts, created_at, forced) in rows {
        // One delivery per (event, destination): each event is handed out once.
        let event = events.remove(&event_id).ok_or_else(|| missing_event(delivery_id, &event_id))?;
        claimed.push(Claimed {
            delivery_id,
            event,
            route: serde_json::from_str(&route)?,
            attempts: count(attempts)?,
            strip_personal,
            created_at: from_us(created_at),
            forced,
        });
    }
    tx.commit().await?;
    claimed.sort_by_key(|c| c.delivery_id);
    Ok(claimed)
}

/// The stored events with these ids, by id.
async fn load_events(conn: &mut PgConnection, ids: &[&str]) -> Result<HashMap<String, Event>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT event_id, body FROM events WHERE event_id = ANY($1)").bind(ids).fetch_all(conn).await?;
    rows.into_iter().map(|(id, body)| Ok((id, serde_json::from_str(&body)?))).collect()
}

fn missing_event(delivery_id: i64, event_id: &str) -> StoreError {
    StoreError::Corrupt(format!("delivery {delivery_id}: its event '{event_id}' is not stored"))
}

/// An attempt count as stored (INTEGER) to the count the domain uses.
fn count(n: i32) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative attempt count {n}")))
}

pub(super) async fn mark_sending(pool: &PgPool, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query("UPDATE deliveries SET state = 'sending', updated_at = $2 WHERE id = ANY($1) AND state = 'claimed'")
        .bind(ids)
        .bind(to_us(now))
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn release(pool: &PgPool, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = $2, lease_owner = NULL, lease_until = NULL, \
         updated_at = $2 WHERE id = ANY($1) AND state = 'claimed'",
    )
    .bind(ids)
    .bind(to_us(now))
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn record(pool: &PgPool, rec: BatchRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
    let now_us = to_us(now);
    let mut tx = pool.begin().await?;
    let mut request_ids = Vec::with_capacity(rec.requests.len());
    for r in &rec.requests {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO requests (destination, endpoint, sent_at, duration_us, status, error, response_excerpt, \
             body_sha256, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&rec.destination)
        .bind(r.endpoint)
        .bind(to_us(r.sent_at))
        .bind(r.duration.as_micros() as i64)
        .bind(r.status.map(i32::from))
        .bind(&r.error)
        .bind(&r.response_excerpt)
        .bind(&r.body_sha256)
        .bind(&r.body)
        .fetch_one(&mut *tx)
        .await?;
        request_ids.push(id);
    }
    for (index, platform_id, at) in &rec.follow_ups {
        if let Some(id) = request_ids.get(*index) {
            sqlx::query("UPDATE requests SET platform_request_id = $2, follow_up_at = $3 WHERE id = $1")
                .bind(id)
                .bind(platform_id)
                .bind(to_us(*at))
                .execute(&mut *tx)
                .await?;
        }
    }
    for u in &rec.updates {
        let messages = (!u.messages.is_empty()).then(|| serde_json::to_string(&u.messages)).transpose()?;
        let updated: Option<i32> = sqlx::query_scalar(
            "UPDATE deliveries SET state = $2, reason = $3, messages = $4, attempts = attempts + $5, \
             next_attempt_at = $6, lease_owner = NULL, lease_until = NULL, updated_at = $7, \
             forced = CASE WHEN $2 = 'pending' THEN forced ELSE FALSE END \
             WHERE id = $1 AND state IN ('claimed', 'sending') AND lease_owner = $8 \
             RETURNING attempt_base + attempts",
        )
        .bind(u.delivery_id)
        .bind(u.state.as_str())
        .bind(&u.reason)
        .bind(messages)
        .bind(i32::from(u.attempted))
        .bind(u.next_attempt_at.map(to_us))
        .bind(now_us)
        .bind(&rec.owner)
        .fetch_optional(&mut *tx)
        .await?;
        // A delivery no longer leased to us (taken over after our lease ran out) keeps its new
        // owner's state, but what we did is still logged.
        let attempt_no = match updated {
            Some(n) => n,
            None => sqlx::query_scalar("SELECT attempt_base + attempts FROM deliveries WHERE id = $1")
                .bind(u.delivery_id)
                .fetch_optional(&mut *tx)
                .await?
                .unwrap_or(0),
        };
        sqlx::query(
            "INSERT INTO attempts (delivery_id, request_id, attempt, at, outcome, detail, payload_sha256, forced) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(u.delivery_id)
        .bind(u.request.and_then(|i| request_ids.get(i).copied()))
        .bind(attempt_no)
        .bind(now_us)
        .bind(u.outcome.as_str())
        .bind(&u.detail)
        .bind(&u.payload_sha256)
        .bind(u.forced)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Takes leases back (every lease when `all`, else only expired ones): `claimed` rows were never
/// sent and go back to pending; `sending` rows may have reached the platform: re-sent only where
/// the platform dedupes on our id, otherwise `in_doubt` (SPEC G4). A row another transaction is
/// settling right now is skipped: it is not lost, its owner is writing its outcome.
pub(super) async fn recover(
    pool: &PgPool,
    planner: Arc<Planner>,
    all: bool,
    now: DateTime<Utc>,
) -> Result<Recovered, StoreError> {
    let now_us = to_us(now);
    let cutoff = if all { i64::MAX } else { now_us };
    let mut tx = pool.begin().await?;
    let released = sqlx::query(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = $1, lease_owner = NULL, lease_until = NULL, \
         updated_at = $1 WHERE id IN (SELECT id FROM deliveries WHERE state = 'claimed' AND lease_until < $2 \
                                      FOR UPDATE SKIP LOCKED)",
    )
    .bind(now_us)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let sql = format!(
        "SELECT id, event_id, destination, {ROUTE_JSON}, attempt_base + attempts FROM deliveries \
         WHERE state = 'sending' AND lease_until < $1 ORDER BY id FOR UPDATE SKIP LOCKED"
    );
    let doubtful: Vec<(i64, String, String, String, i32)> =
        sqlx::query_as(&sql).bind(cutoff).fetch_all(&mut *tx).await?;
    let event_ids: Vec<&str> = doubtful.iter().map(|r| r.1.as_str()).collect();
    let events = load_events(&mut tx, &event_ids).await?;
    let mut out = Recovered { released, ..Recovered::default() };
    for (id, event_id, destination, route, attempts) in &doubtful {
        let event = events.get(event_id).ok_or_else(|| missing_event(*id, event_id))?;
        let route: Route = serde_json::from_str(route)?;
        let resend = planner.rules(destination).is_some_and(|rules| rules.dedupes_resend_at(event, &route, now));
        if resend {
            out.resent += 1;
        } else {
            out.in_doubt += 1;
        }
        let (state, outcome, detail) = crate::store::rules::after_crash(resend);
        sqlx::query(
            "UPDATE deliveries SET state = $2, reason = $3, attempts = attempts + 1, next_attempt_at = $4, \
             lease_owner = NULL, lease_until = NULL, updated_at = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind((!resend).then_some(reason::CRASHED_WHILE_SENDING))
        .bind(resend.then_some(now_us))
        .bind(now_us)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO attempts (delivery_id, attempt, at, outcome, detail) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(attempts + 1)
            .bind(now_us)
            .bind(outcome)
            .bind(detail)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(out)
}

pub(super) async fn replay(
    pool: &PgPool,
    sel: ReplaySelector,
    force: bool,
    now: DateTime<Utc>,
) -> Result<ReplayReport, StoreError> {
    let now_us = to_us(now);
    let mut tx = pool.begin().await?;
    let mut targets = select_targets(&mut tx, &sel).await?;
    // Lock only the ended rows (the ones a replay changes), in id order, and decide on their
    // state as it is once locked: the queue's writers never wait on an ended row, so a replay
    // cannot deadlock with them.
    let ended: Vec<i64> = targets.iter().filter(|t| t.1.is_ended()).map(|t| t.0).collect();
    if !ended.is_empty() {
        let locked: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT id, state, reason FROM deliveries WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ended)
                .fetch_all(&mut *tx)
                .await?;
        let locked: HashMap<i64, (DeliveryState, Option<String>)> =
            locked.into_iter().map(|(id, s, r)| Ok((id, (parse_state(&s)?, r)))).collect::<Result<_, StoreError>>()?;
        for t in &mut targets {
            if let Some((state, reason)) = locked.get(&t.0) {
                (t.1, t.2) = (*state, reason.clone());
            }
        }
    }
    let mut report = ReplayReport { dry_run: sel.dry_run, ..ReplayReport::default() };
    for (id, state, previous_reason) in targets {
        let refusal = crate::store::rules::replay_refusal(state, previous_reason.as_deref(), force);
        if let Some(why) = refusal {
            report.refused.push(ReplayRefusal { delivery_id: id, state, reason: why.into() });
            continue;
        }
        if sel.dry_run {
            report.replayed.push(id);
            continue;
        }
        sqlx::query(
            "UPDATE deliveries SET state = 'pending', reason = NULL, messages = NULL, attempts = 0, \
             next_attempt_at = $2, created_at = $2, updated_at = $2, forced = $3, \
             attempt_base = attempt_base + attempts WHERE id = $1",
        )
        .bind(id)
        .bind(now_us)
        .bind(force && state == DeliveryState::Delivered)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO replays (delivery_id, at, previous_state, previous_reason, forced) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(now_us)
        .bind(state.as_str())
        .bind(previous_reason)
        .bind(force)
        .execute(&mut *tx)
        .await?;
        report.replayed.push(id);
    }
    tx.commit().await?;
    Ok(report)
}

/// The deliveries a selector names, by id: (id, state, reason). An empty selector names all.
async fn select_targets(
    conn: &mut PgConnection,
    sel: &ReplaySelector,
) -> Result<Vec<(i64, DeliveryState, Option<String>)>, StoreError> {
    let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT id, state, reason FROM deliveries \
         WHERE (cardinality($1::BIGINT[]) = 0 OR id = ANY($1)) AND ($2::TEXT IS NULL OR event_id = $2) \
         AND ($3::TEXT IS NULL OR destination = $3) AND ($4::TEXT IS NULL OR state = $4) ORDER BY id",
    )
    .bind(&sel.delivery_ids)
    .bind(&sel.event_id)
    .bind(&sel.destination)
    .bind(sel.state.map(DeliveryState::as_str))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(|(id, s, r)| Ok((id, parse_state(&s)?, r))).collect()
}

fn parse_state(s: &str) -> Result<DeliveryState, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

#[cfg(test)]
pub(super) mod tests;
