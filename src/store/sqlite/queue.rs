//! The delivery queue: claims with leases, the "sending" mark, outcomes, crash recovery, replays.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{from_us, to_us};
use crate::core::delivery::reason;
use crate::core::plan::Planner;
use crate::core::{Claimed, DeliveryState, Event, Route};
use crate::store::{BatchRecord, Recovered, ReplayRefusal, ReplayReport, ReplaySelector, StoreError};

/// The statement behind [`claim`] (its query plan is checked in `plans.rs`).
pub(super) const CLAIM: &str =
    "UPDATE deliveries SET state = 'claimed', lease_owner = ?1, lease_until = ?2, updated_at = ?3 \
     WHERE id IN (SELECT d.id FROM deliveries d JOIN events e ON e.event_id = d.event_id \
                  WHERE d.state = 'pending' AND d.destination = ?4 AND d.next_attempt_at <= ?3 \
                  AND NOT EXISTS (SELECT 1 FROM events e2 JOIN deliveries d2 ON d2.event_id = e2.event_id \
                                  WHERE e2.subject_type = e.subject_type AND e2.subject_id = e.subject_id \
                                  AND e2.occurred_at < e.occurred_at AND d2.destination = d.destination \
                                  AND d2.state IN ('pending', 'claimed', 'sending')) \
                  ORDER BY d.next_attempt_at LIMIT ?5) \
     RETURNING id, event_id, dest_event, browser_tracked, strip_personal, attempts, created_at, forced, route";

/// `mark_sending`, per delivery.
pub(super) const MARK_SENDING: &str =
    "UPDATE deliveries SET state = 'sending', updated_at = ?2 WHERE id = ?1 AND state = 'claimed' AND lease_owner = ?3";

/// `record`: one delivery's outcome.
pub(super) const RECORD: &str =
    "UPDATE deliveries SET state = ?2, reason = ?3, messages = ?4, attempts = attempts + ?5, \
         next_attempt_at = ?6, lease_owner = NULL, lease_until = NULL, updated_at = ?7, \
         forced = CASE WHEN ?2 = 'pending' THEN forced ELSE 0 END \
         WHERE id = ?1 AND state IN ('claimed', 'sending') AND lease_owner = ?8 \
         RETURNING attempt_base + attempts";

/// `recover`: claimed deliveries whose lease ran out go back to pending.
pub(super) const RECOVER_CLAIMED: &str =
    "UPDATE deliveries SET state = 'pending', next_attempt_at = ?1, lease_owner = NULL, lease_until = NULL, \
             updated_at = ?1 WHERE state = 'claimed' AND lease_until < ?2";

/// `recover`: deliveries caught sending when their lease ran out.
pub(super) const RECOVER_SENDING: &str =
    "SELECT id, event_id, destination, dest_event, attempt_base + attempts, route FROM deliveries \
             WHERE state = 'sending' AND lease_until < ?1";

/// Claims due deliveries for `destination`. Per subject and destination, deliveries go out in
/// event-time order: one waits while an earlier event of the same subject still has its delivery
/// to this destination pending or in flight, so a refund never overtakes its purchase (Google
/// would create a conversion from the adjustment, then overwrite it with the purchase's value).
pub(super) fn claim(
    conn: &Connection,
    destination: &str,
    limit: usize,
    lease: Duration,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, StoreError> {
    let until = to_us(now) + lease.as_micros() as i64;
    let mut stmt = conn.prepare_cached(CLAIM)?;
    let rows = stmt
        .query_map(params![owner, until, to_us(now), destination, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                (
                    Route { event: r.get(2)?, browser_tracked: r.get(3)?, ..Route::default() },
                    r.get::<_, Option<String>>(8)?,
                ),
                r.get::<_, bool>(4)?,
                r.get::<_, u32>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, bool>(7)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (delivery_id, event_id, (route, stored), strip_personal, attempts, created_at, forced) in rows {
        let route = stored_route(stored, route)?;
        claimed.push(Claimed {
            delivery_id,
            event: load_event(conn, &event_id)?,
            route,
            attempts,
            strip_personal,
            created_at: from_us(created_at),
            forced,
        });
    }
    claimed.sort_by_key(|c| c.delivery_id);
    Ok(claimed)
}

/// The route stored with the delivery, or the one rebuilt from its columns for older rows.
fn stored_route(stored: Option<String>, fallback: Route) -> Result<Route, StoreError> {
    match stored {
        Some(json) => Ok(serde_json::from_str(&json)?),
        None => Ok(fallback),
    }
}

fn load_event(conn: &Connection, event_id: &str) -> Result<Event, StoreError> {
    let body: String =
        conn.prepare_cached("SELECT body FROM events WHERE event_id = ?1")?.query_row([event_id], |r| r.get(0))?;
    Ok(serde_json::from_str(&body)?)
}

pub(super) fn mark_sending(
    conn: &Connection,
    ids: &[i64],
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let mut stmt = conn.prepare_cached(MARK_SENDING)?;
    let mut marked = Vec::with_capacity(ids.len());
    for &id in ids {
        if stmt.execute(params![id, to_us(now), owner])? == 1 {
            marked.push(id);
        }
    }
    Ok(marked)
}

pub(super) fn release(conn: &Connection, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = ?2, lease_owner = NULL, lease_until = NULL, \
         updated_at = ?2 WHERE id = ?1 AND state = 'claimed'",
    )?;
    for id in ids {
        stmt.execute(params![id, to_us(now)])?;
    }
    Ok(())
}

pub(super) fn record(conn: &Connection, rec: &BatchRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut request_ids = Vec::with_capacity(rec.requests.len());
    let mut insert_request = conn.prepare_cached(
        "INSERT INTO requests (destination, endpoint, sent_at, duration_us, status, error, response_excerpt, \
         body_sha256, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for r in &rec.requests {
        insert_request.execute(params![
            rec.destination,
            r.endpoint,
            to_us(r.sent_at),
            r.duration.as_micros() as i64,
            r.status,
            r.error,
            r.response_excerpt,
            r.body_sha256,
            r.body
        ])?;
        request_ids.push(conn.last_insert_rowid());
    }
    for (index, platform_id, at) in &rec.follow_ups {
        if let Some(id) = request_ids.get(*index) {
            conn.prepare_cached("UPDATE requests SET platform_request_id = ?2, follow_up_at = ?3 WHERE id = ?1")?
                .execute(params![id, platform_id, to_us(*at)])?;
        }
    }
    let mut update = conn.prepare_cached(RECORD)?;
    let mut insert_attempt = conn.prepare_cached(
        "INSERT INTO attempts (delivery_id, request_id, attempt, at, outcome, detail, payload_sha256, forced) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for u in &rec.updates {
        let messages = (!u.messages.is_empty()).then(|| serde_json::to_string(&u.messages)).transpose()?;
        let updated: Option<u32> = update
            .query_row(
                params![
                    u.delivery_id,
                    u.state.as_str(),
                    u.reason,
                    messages,
                    u.attempted as i64,
                    u.next_attempt_at.map(to_us),
                    to_us(now),
                    rec.owner
                ],
                |r| r.get(0),
            )
            .optional()?;
        // A delivery no longer leased to us (taken over after our lease ran out) keeps its new
        // owner's state, but what we did is still logged.
        let attempt_no = match updated {
            Some(n) => n,
            None => conn
                .prepare_cached("SELECT attempt_base + attempts FROM deliveries WHERE id = ?1")?
                .query_row([u.delivery_id], |r| r.get(0))
                .optional()?
                .unwrap_or(0),
        };
        insert_attempt.execute(params![
            u.delivery_id,
            u.request.and_then(|i| request_ids.get(i).copied()),
            attempt_no,
            to_us(now),
            u.outcome.as_str(),
            u.detail,
            u.payload_sha256,
            u.forced
        ])?;
    }
    Ok(())
}

/// Takes leases back: `claimed` rows were never sent and go back to pending; `sending` rows may
/// have reached the platform: re-sent only where the platform dedupes on our id, otherwise
/// `in_doubt` (SPEC G4).
pub(super) fn recover(
    conn: &Connection,
    planner: &Planner,
    all: bool,
    now: DateTime<Utc>,
) -> Result<Recovered, StoreError> {
    let now_us = to_us(now);
    let cutoff = if all { i64::MAX } else { now_us };
    let released = conn.prepare_cached(RECOVER_CLAIMED)?.execute(params![now_us, cutoff])? as u64;
    let doubtful: Vec<(i64, String, String, String, u32, Option<String>)> = conn
        .prepare_cached(RECOVER_SENDING)?
        .query_map([cutoff], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Recovered { released, ..Recovered::default() };
    for (id, event_id, destination, dest_event, attempts, stored) in doubtful {
        let event = load_event(conn, &event_id)?;
        let route = stored_route(stored, Route { event: dest_event, ..Route::default() })?;
        let resend = planner.rules(&destination).is_some_and(|rules| rules.dedupes_resend_at(&event, &route, now));
        if resend {
            out.resent += 1;
        } else {
            out.in_doubt += 1;
        }
        let (state, outcome, detail) = crate::store::rules::after_crash(resend);
        conn.prepare_cached(
            "UPDATE deliveries SET state = ?2, reason = ?3, attempts = attempts + 1, next_attempt_at = ?4, \
             lease_owner = NULL, lease_until = NULL, updated_at = ?5 WHERE id = ?1",
        )?
        .execute(params![
            id,
            state.as_str(),
            (!resend).then_some(reason::CRASHED_WHILE_SENDING),
            resend.then_some(now_us),
            now_us
        ])?;
        conn.prepare_cached(
            "INSERT INTO attempts (delivery_id, attempt, at, outcome, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![id, attempts + 1, now_us, outcome, detail])?;
    }
    Ok(out)
}

pub(super) fn replay(
    conn: &Connection,
    sel: &ReplaySelector,
    force: bool,
    now: DateTime<Utc>,
) -> Result<ReplayReport, StoreError> {
    let targets = select_targets(conn, sel)?;
    let mut report = ReplayReport { dry_run: sel.dry_run, ..ReplayReport::default() };
    let now_us = to_us(now);
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
        conn.prepare_cached(
            "UPDATE deliveries SET state = 'pending', reason = NULL, messages = NULL, attempts = 0, \
             next_attempt_at = ?2, created_at = ?2, updated_at = ?2, forced = ?3, \
             attempt_base = attempt_base + attempts WHERE id = ?1",
        )?
        .execute(params![id, now_us, force && state == DeliveryState::Delivered])?;
        conn.prepare_cached(
            "INSERT INTO replays (delivery_id, at, previous_state, previous_reason, forced, replayed_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![id, now_us, state.as_str(), previous_reason, force, sel.by])?;
        report.replayed.push(id);
    }
    Ok(report)
}

fn select_targets(
    conn: &Connection,
    sel: &ReplaySelector,
) -> Result<Vec<(i64, DeliveryState, Option<String>)>, StoreError> {
    let mut sql = String::from("SELECT id, state, reason FROM deliveries WHERE 1 = 1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if !sel.delivery_ids.is_empty() {
        let marks = vec!["?"; sel.delivery_ids.len()].join(", ");
        sql.push_str(&format!(" AND id IN ({marks})"));
        args.extend(sel.delivery_ids.iter().map(|i| (*i).into()));
    }
    if let Some(e) = &sel.event_id {
        sql.push_str(" AND event_id = ?");
        args.push(e.clone().into());
    }
    if let Some(d) = &sel.destination {
        sql.push_str(" AND destination = ?");
        args.push(d.clone().into());
    }
    if let Some(s) = sel.state {
        sql.push_str(" AND state = ?");
        args.push(s.as_str().to_owned().into());
    }
    if let Some(r) = &sel.reason {
        sql.push_str(" AND reason = ?");
        args.push(r.clone().into());
    }
    sql.push_str(" ORDER BY id");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|(id, s, r)| Ok((id, s.parse().map_err(StoreError::Corrupt)?, r))).collect()
}
