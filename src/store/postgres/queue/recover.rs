//! Taking deliveries back on PostgreSQL: expired (or, at start, all) leases recovered, and replays
//! of ended deliveries (a delivered one only when forced, and logged).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{load_events, missing_event, ROUTE_JSON};
use crate::core::delivery::reason;
use crate::core::plan::Planner;
use crate::core::{DeliveryState, Route};
use crate::store::postgres::to_us;
use crate::store::{Recovered, ReplayRefusal, ReplayReport, ReplaySelector, StoreError};

/// Takes leases back (every lease when `all`, else only expired ones): `claimed` rows were never
/// sent and go back to pending; `sending` rows may have reached the platform: re-sent only where
/// the platform dedupes on our id, otherwise `in_doubt` (SPEC G4). A row another transaction is
/// settling right now is skipped: it is not lost, its owner is writing its outcome.
pub(in crate::store::postgres) async fn recover(
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

pub(in crate::store::postgres) async fn replay(
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
            "INSERT INTO replays (delivery_id, at, previous_state, previous_reason, forced, replayed_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(now_us)
        .bind(state.as_str())
        .bind(previous_reason)
        .bind(force)
        .bind(sel.by.as_deref())
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
         AND ($3::TEXT IS NULL OR destination = $3) AND ($4::TEXT IS NULL OR state = $4) \
         AND ($5::TEXT IS NULL OR reason = $5) ORDER BY id",
    )
    .bind(&sel.delivery_ids)
    .bind(&sel.event_id)
    .bind(&sel.destination)
    .bind(sel.state.map(DeliveryState::as_str))
    .bind(&sel.reason)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(|(id, s, r)| Ok((id, parse_state(&s)?, r))).collect()
}

fn parse_state(s: &str) -> Result<DeliveryState, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}
