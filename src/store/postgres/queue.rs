//! The delivery queue on PostgreSQL: claims with leases, the "sending" mark, outcomes, recovery of
//! expired leases, replays. Same semantics as `store::sqlite::queue`; several processes share the
//! table, so every statement that picks rows to change skips rows another transaction holds
//! (`FOR UPDATE … SKIP LOCKED`) or locks them in id order, and no call ever waits in a cycle.

mod recover;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

pub(super) use self::recover::{recover, replay};
use super::{from_us, to_us};
use crate::core::{Claimed, Event, RequestRecord};
use crate::store::{BatchRecord, DeliveryUpdate, StoreError};

/// The route a delivery is sent with: the one stored with it, or (rows written without one) the
/// one its columns describe, as JSON either way.
const ROUTE_JSON: &str =
    "coalesce(route, json_build_object('event', dest_event, 'browser_tracked', browser_tracked)::text)";

/// Claims due deliveries for `destination`. Per subject and destination, deliveries go out in
/// event-time order: one waits while an earlier event of the same subject still has its delivery
/// to this destination pending or in flight, so a refund never overtakes its purchase. Rows
/// another process is claiming right now are skipped, never waited for or taken twice. One
/// statement, its own transaction: the claim and the claimed events' bodies in one round trip.
pub(super) async fn claim(
    pool: &PgPool,
    destination: &str,
    limit: usize,
    lease: Duration,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Claimed>, StoreError> {
    let until = to_us(now) + lease.as_micros() as i64;
    let sql = format!(
        "WITH c AS (UPDATE deliveries SET state = 'claimed', lease_owner = $1, lease_until = $2, updated_at = $3 \
         WHERE id IN (SELECT d.id FROM deliveries d JOIN events e ON e.event_id = d.event_id \
                      WHERE d.state = 'pending' AND d.destination = $4 AND d.next_attempt_at <= $3 \
                      AND NOT EXISTS (SELECT 1 FROM events e2 JOIN deliveries d2 ON d2.event_id = e2.event_id \
                                      WHERE e2.subject_type = e.subject_type AND e2.subject_id = e.subject_id \
                                      AND e2.occurred_at < e.occurred_at AND d2.destination = d.destination \
                                      AND d2.state IN ('pending', 'claimed', 'sending')) \
                      ORDER BY d.next_attempt_at, d.id LIMIT $5 \
                      FOR UPDATE OF d SKIP LOCKED) \
         RETURNING id, event_id, {ROUTE_JSON} AS route, strip_personal, attempts, created_at, forced) \
         SELECT c.id, c.event_id, c.route, c.strip_personal, c.attempts, c.created_at, c.forced, e.body \
         FROM c LEFT JOIN events e ON e.event_id = c.event_id ORDER BY c.id"
    );
    let rows: Vec<ClaimRow> = sqlx::query_as(&sql)
        .bind(owner)
        .bind(until)
        .bind(to_us(now))
        .bind(destination)
        .bind(limit as i64)
        .fetch_all(pool)
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for (delivery_id, event_id, route, strip_personal, attempts, created_at, forced, body) in rows {
        // One delivery per (event, destination): each event is handed out once.
        let body = body.ok_or_else(|| missing_event(delivery_id, &event_id))?;
        claimed.push(Claimed {
            delivery_id,
            event: serde_json::from_str(&body)?,
            route: serde_json::from_str(&route)?,
            attempts: count(attempts)?,
            strip_personal,
            created_at: from_us(created_at),
            forced,
        });
    }
    Ok(claimed)
}

/// A claimed delivery: (id, event id, route JSON, strip_personal, attempts, created_at, forced,
/// the event's body if stored).
type ClaimRow = (i64, String, String, bool, i32, i64, bool, Option<String>);

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

pub(super) async fn mark_sending(
    pool: &PgPool,
    ids: &[i64],
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let marked = sqlx::query_scalar(
        "UPDATE deliveries SET state = 'sending', updated_at = $2 \
         WHERE id = ANY($1) AND state = 'claimed' AND lease_owner = $3 RETURNING id",
    )
    .bind(ids)
    .bind(to_us(now))
    .bind(owner)
    .fetch_all(pool)
    .await?;
    Ok(marked)
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

/// Records a batch's requests, outcomes and attempts. Each delivery id once (the usual case):
/// one statement, its own transaction. A delivery named more than once: its updates apply one
/// after the other, each round a statement in one transaction, as if recorded in turn.
pub(super) async fn record(pool: &PgPool, rec: BatchRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
    let rounds = rounds(&rec.updates);
    if rounds.len() <= 1 {
        let updates: Vec<&DeliveryUpdate> = rec.updates.iter().collect();
        record_round(&mut *pool.acquire().await?, &rec, &updates, Requests::Insert, now).await?;
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    let mut request_ids = Vec::new();
    for (i, round) in rounds.iter().enumerate() {
        let requests = if i == 0 { Requests::Insert } else { Requests::Inserted(&request_ids) };
        let ids = record_round(&mut tx, &rec, round, requests, now).await?;
        if i == 0 {
            request_ids = ids;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The updates split into rounds that each name a delivery at most once, in order.
fn rounds(updates: &[DeliveryUpdate]) -> Vec<Vec<&DeliveryUpdate>> {
    let mut rounds: Vec<(HashSet<i64>, Vec<&DeliveryUpdate>)> = Vec::new();
    for u in updates {
        // After the last round that names this delivery already.
        let after = rounds.iter().rposition(|(ids, _)| ids.contains(&u.delivery_id)).map_or(0, |i| i + 1);
        if after == rounds.len() {
            rounds.push((HashSet::new(), Vec::new()));
        }
        let (ids, list) = &mut rounds[after];
        ids.insert(u.delivery_id);
        list.push(u);
    }
    rounds.into_iter().map(|(_, list)| list).collect()
}

/// The batch's requests: inserted by this round (the first), or already, with these ids.
#[derive(Clone, Copy)]
enum Requests<'a> {
    Insert,
    Inserted(&'a [i64]),
}

/// One round of [`record`]: the requests (first round), the updates of deliveries still leased
/// to the recorder, and an attempt row for every update, in one statement. A delivery no longer
/// leased to us (taken over after our lease ran out) keeps its new owner's state, but what we did
/// is still logged. Returns the ids of the requests inserted, in order.
async fn record_round(
    conn: &mut PgConnection,
    rec: &BatchRecord,
    updates: &[&DeliveryUpdate],
    requests: Requests<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let inserting: &[RequestRecord] = match requests {
        Requests::Insert => &rec.requests,
        Requests::Inserted(_) => &[],
    };
    let n = inserting.len();
    let (mut endpoint, mut sent_at, mut duration) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut status, mut error, mut excerpt) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut body_sha256, mut body) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut platform_id, mut follow_up_at) = (vec![None; n], vec![None; n]);
    for r in inserting {
        endpoint.push(r.endpoint);
        sent_at.push(to_us(r.sent_at));
        duration.push(i64::try_from(r.duration.as_micros()).unwrap_or(i64::MAX));
        status.push(r.status.map(i32::from));
        error.push(r.error.as_deref());
        excerpt.push(r.response_excerpt.as_str());
        body_sha256.push(r.body_sha256.as_str());
        body.push(r.body.as_deref());
    }
    if !inserting.is_empty() {
        for (index, id, at) in &rec.follow_ups {
            if let (Some(p), Some(f)) = (platform_id.get_mut(*index), follow_up_at.get_mut(*index)) {
                (*p, *f) = (Some(id.as_str()), Some(to_us(*at)));
            }
        }
    }
    let m = updates.len();
    let (mut delivery_id, mut state, mut reason) =
        (Vec::with_capacity(m), Vec::with_capacity(m), Vec::with_capacity(m));
    let (mut messages, mut attempted, mut next) = (Vec::with_capacity(m), Vec::with_capacity(m), Vec::with_capacity(m));
    let (mut outcome, mut detail, mut payload) = (Vec::with_capacity(m), Vec::with_capacity(m), Vec::with_capacity(m));
    let (mut request_n, mut request_id, mut forced) =
        (Vec::with_capacity(m), Vec::with_capacity(m), Vec::with_capacity(m));
    for u in updates {
        delivery_id.push(u.delivery_id);
        state.push(u.state.as_str());
        reason.push(u.reason.as_deref());
        messages.push((!u.messages.is_empty()).then(|| serde_json::to_string(&u.messages)).transpose()?);
        attempted.push(i32::from(u.attempted));
        next.push(u.next_attempt_at.map(to_us));
        outcome.push(u.outcome.as_str());
        detail.push(u.detail.as_deref());
        payload.push(u.payload_sha256.as_deref());
        forced.push(u.forced);
        match requests {
            // ORDINALITY counts from 1.
            Requests::Insert => {
                request_n.push(u.request.filter(|i| *i < n).map(|i| i as i64 + 1));
                request_id.push(None);
            }
            Requests::Inserted(ids) => {
                request_n.push(None);
                request_id.push(u.request.and_then(|i| ids.get(i).copied()));
            }
        }
    }
    let ids: Vec<i64> = sqlx::query_scalar(
        "WITH r AS (SELECT nextval(pg_get_serial_sequence('requests', 'id')) AS id, r.* \
                    FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::int4[], $6::text[], $7::text[], $8::text[], \
                                $9::text[], $10::int8[], $25::text[]) WITH ORDINALITY \
                    AS r (endpoint, sent_at, duration_us, status, error, response_excerpt, body_sha256, \
                          platform_request_id, follow_up_at, body, n)), \
         ins_r AS (INSERT INTO requests (id, destination, endpoint, sent_at, duration_us, status, error, \
                                         response_excerpt, body_sha256, platform_request_id, follow_up_at, body) \
                   SELECT id, $1, endpoint, sent_at, duration_us, status, error, response_excerpt, body_sha256, \
                          platform_request_id, follow_up_at, body FROM r ORDER BY n), \
         u AS (SELECT * FROM UNNEST($11::int8[], $12::text[], $13::text[], $14::text[], $15::int4[], $16::int8[], \
                                    $17::text[], $18::text[], $19::text[], $20::int8[], $21::int8[], $22::bool[]) \
               WITH ORDINALITY AS u (delivery_id, state, reason, messages, attempted, next_attempt_at, outcome, \
                                     detail, payload_sha256, request_n, request_id, forced, n)), \
         upd AS (UPDATE deliveries d SET state = u.state, reason = u.reason, messages = u.messages, \
                        attempts = d.attempts + u.attempted, next_attempt_at = u.next_attempt_at, \
                        lease_owner = NULL, lease_until = NULL, updated_at = $23, \
                        forced = CASE WHEN u.state = 'pending' THEN d.forced ELSE FALSE END \
                 FROM u WHERE d.id = u.delivery_id AND d.state IN ('claimed', 'sending') AND d.lease_owner = $24 \
                 RETURNING d.id, d.attempt_base + d.attempts AS attempts), \
         ins_a AS (INSERT INTO attempts (delivery_id, request_id, attempt, at, outcome, detail, payload_sha256, \
                                         forced) \
                   SELECT u.delivery_id, coalesce(r.id, u.request_id), \
                          coalesce(upd.attempts, (SELECT x.attempt_base + x.attempts FROM deliveries x WHERE x.id = u.delivery_id), 0), \
                          $23, u.outcome, u.detail, u.payload_sha256, u.forced \
                   FROM u LEFT JOIN upd ON upd.id = u.delivery_id LEFT JOIN r ON r.n = u.request_n ORDER BY u.n) \
         SELECT id FROM r ORDER BY n",
    )
    .bind(&rec.destination)
    .bind(endpoint)
    .bind(sent_at)
    .bind(duration)
    .bind(status)
    .bind(error)
    .bind(excerpt)
    .bind(body_sha256)
    .bind(platform_id)
    .bind(follow_up_at)
    .bind(delivery_id)
    .bind(state)
    .bind(reason)
    .bind(messages)
    .bind(attempted)
    .bind(next)
    .bind(outcome)
    .bind(detail)
    .bind(payload)
    .bind(request_n)
    .bind(request_id)
    .bind(forced)
    .bind(to_us(now))
    .bind(&rec.owner)
    .bind(body)
    .fetch_all(&mut *conn)
    .await?;
    Ok(ids)
}

#[cfg(test)]
pub(super) mod tests;
