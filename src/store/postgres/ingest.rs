//! Ingest writes on PostgreSQL: dedupe by `event_id`, join from the identity bridge, plan, commit
//! — the semantics of `store::sqlite::ingest`, made safe for several processes writing at once.
//!
//! Without a single writer, uniqueness is the database's: an event is claimed by inserting it
//! (`ON CONFLICT DO NOTHING`), and a bridge entry is merged under its row lock. Every batch takes
//! its row locks in key order, so two batches sharing keys wait for each other, never deadlock.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::to_us;
use crate::core::delivery::reason;
use crate::core::plan::{join, Planned, Planner};
use crate::core::{Consent, DeliveryState, Event, Identity, Route, Subject};
use crate::store::identity_wait::{replan, Waiting, REPLANNED};
use crate::store::prepare::{prepare, EventToStore};
use crate::store::{IdentityCapture, IngestResult, IngestStatus, PlannedDelivery, Receipt, StoreError};

/// Batches larger than this are prepared on the blocking pool, as the SQLite store does.
const PREPARE_INLINE: usize = 16;

/// A planned delivery waiting for the batch's one insert.
struct NewDelivery {
    /// The event's place in the batch.
    index: usize,
    event_id: String,
    /// The event's `received_at`: when it was planned, and due if pending.
    at: i64,
    planned: Planned,
}

const BRIDGE: &str = "SELECT identity, consent FROM identities WHERE subject_type = $1 AND subject_id = $2";
const BRIDGE_FOR_UPDATE: &str =
    "SELECT identity, consent FROM identities WHERE subject_type = $1 AND subject_id = $2 FOR UPDATE";

pub(super) async fn ingest(
    pool: &PgPool,
    events: Vec<Event>,
    planner: Arc<Planner>,
) -> Result<Vec<IngestResult>, StoreError> {
    let prepared = prepare_off_thread(events, &planner).await?;
    let mut tx = pool.begin().await?;
    let results = ingest_in(&mut tx, prepared, &planner).await?;
    tx.commit().await?;
    Ok(results)
}

/// Hashes, plans and encodes events; a large batch on the blocking pool.
pub(super) async fn prepare_off_thread(
    events: Vec<Event>,
    planner: &Arc<Planner>,
) -> Result<Vec<EventToStore>, StoreError> {
    if events.len() > PREPARE_INLINE {
        let planner = planner.clone();
        tokio::task::spawn_blocking(move || prepare(events, &planner))
            .await
            .map_err(|e| StoreError::Task(format!("preparing events failed: {e}")))?
    } else {
        prepare(events, planner)
    }
}

/// [`ingest`] inside the caller's transaction.
pub(super) async fn ingest_in(
    tx: &mut PgConnection,
    prepared: Vec<EventToStore>,
    planner: &Planner,
) -> Result<Vec<IngestResult>, StoreError> {
    let count = prepared.len();
    // Lock order is event_id order; the sort is stable, so an id repeated in the batch is first
    // inserted by its first occurrence and the later ones are its duplicates, as in SQLite.
    let mut ordered: Vec<(usize, EventToStore)> = prepared.into_iter().enumerate().collect();
    ordered.sort_by(|(_, a), (_, b)| a.event.event_id.cmp(&b.event.event_id));

    let mut results: Vec<Option<IngestResult>> = vec![None; count];
    let mut deliveries = Vec::new();
    lock_waits(tx, &ordered).await?;
    for (index, p) in ordered {
        results[index] = Some(ingest_one(tx, p, planner, index, &mut deliveries).await?);
    }
    insert_deliveries(tx, deliveries).await?;
    Ok(results.into_iter().flatten().collect())
}

/// One event: a duplicate or conflict of a stored one, or joined, planned and inserted (its
/// deliveries are added to `deliveries`, tagged with the event's place in the batch).
async fn ingest_one(
    conn: &mut PgConnection,
    p: EventToStore,
    planner: &Planner,
    index: usize,
    deliveries: &mut Vec<NewDelivery>,
) -> Result<IngestResult, StoreError> {
    let EventToStore { mut event, hash, mut planned, body } = p;
    let received_at = to_us(event.received_at);
    if let Some((identity, consent)) = bridge(conn, BRIDGE, &event.subject.kind, &event.subject.id).await? {
        join(&mut event, &identity, &consent);
    }
    // Then what is known about the user (a Segment `identify`, a CRM contact), if the event
    // names one and is not itself about that user.
    if let Some(user) =
        event.identity.user_id.clone().filter(|u| event.subject.kind != "user" || event.subject.id != *u)
    {
        if let Some((identity, consent)) = bridge(conn, BRIDGE, "user", &user).await? {
            join(&mut event, &identity, &consent);
        }
    }
    let joined_body = if event.joined.is_empty() {
        None
    } else {
        planned = planner.plan(&event, event.received_at);
        Some(serde_json::to_string(&event)?)
    };
    let event_id = event.event_id.as_str();

    let stored_hash = loop {
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO events (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, \
             content_hash, routed, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (event_id) DO NOTHING RETURNING seq",
        )
        .bind(event_id)
        .bind(event.kind.as_str())
        .bind(&event.source)
        .bind(&event.subject.kind)
        .bind(&event.subject.id)
        .bind(to_us(event.occurred_at))
        .bind(received_at)
        .bind(&hash)
        .bind(!planned.is_empty())
        .bind(joined_body.as_deref().unwrap_or(&body))
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_some() {
            break None;
        }
        // Stored already (by this batch, or by a transaction that has committed since: the insert
        // waited for it). A fresh statement sees it, unless it was pruned meanwhile: try again.
        let stored: Option<String> = sqlx::query_scalar("SELECT content_hash FROM events WHERE event_id = $1")
            .bind(event_id)
            .fetch_optional(&mut *conn)
            .await?;
        if stored.is_some() {
            break stored;
        }
    };

    if let Some(stored) = stored_hash {
        let status = if stored == hash {
            IngestStatus::Duplicate
        } else {
            // The attempt as the source stated it (before any join), as SQLite records it.
            sqlx::query("INSERT INTO conflicts (event_id, received_at, content_hash, body) VALUES ($1, $2, $3, $4)")
                .bind(event_id)
                .bind(received_at)
                .bind(&hash)
                .bind(&body)
                .execute(&mut *conn)
                .await?;
            IngestStatus::Conflict
        };
        return Ok(IngestResult { event_id: event_id.to_owned(), status, deliveries: Vec::new() });
    }

    let result = IngestResult {
        event_id: event_id.to_owned(),
        status: IngestStatus::Accepted,
        deliveries: planned
            .iter()
            .map(|p| PlannedDelivery { destination: p.destination.clone(), state: p.state, reason: p.reason })
            .collect(),
    };
    deliveries.extend(planned.into_iter().map(|planned| NewDelivery {
        index,
        event_id: event_id.to_owned(),
        at: received_at,
        planned,
    }));
    Ok(result)
}

/// Inserts the batch's planned deliveries in one statement, in input order (so delivery ids
/// follow the batch as in SQLite, though events were inserted in `event_id` order).
async fn insert_deliveries(conn: &mut PgConnection, mut deliveries: Vec<NewDelivery>) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    deliveries.sort_by_key(|d| d.index);
    let n = deliveries.len();
    let (mut event_id, mut destination, mut dest_event) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut browser_tracked, mut strip_personal) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut state, mut reason, mut messages) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut due, mut at, mut route) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for NewDelivery { event_id: id, at: planned_at, planned: p, .. } in deliveries {
        messages.push((!p.messages.is_empty()).then(|| serde_json::to_string(&p.messages)).transpose()?);
        route.push(serde_json::to_string(&p.route)?);
        // Awaiting identity: due when its wait ends (the worker then ends it `no_identity`).
        due.push((p.state == DeliveryState::Pending).then(|| p.wait_until.map_or(planned_at, to_us)));
        at.push(planned_at);
        event_id.push(id);
        destination.push(p.destination);
        dest_event.push(p.route.event);
        browser_tracked.push(p.route.browser_tracked);
        strip_personal.push(p.strip_personal);
        state.push(p.state.as_str());
        reason.push(p.reason);
    }
    sqlx::query(
        "INSERT INTO deliveries (event_id, destination, dest_event, browser_tracked, strip_personal, state, reason, \
         messages, next_attempt_at, created_at, updated_at, route) \
         SELECT event_id, destination, dest_event, browser_tracked, strip_personal, state, reason, messages, due, \
         at, at, route \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bool[], $5::bool[], $6::text[], $7::text[], $8::text[], \
         $9::int8[], $10::int8[], $11::text[]) WITH ORDINALITY \
         AS d (event_id, destination, dest_event, browser_tracked, strip_personal, state, reason, messages, due, at, \
         route, n) ORDER BY n",
    )
    .bind(event_id)
    .bind(destination)
    .bind(dest_event)
    .bind(browser_tracked)
    .bind(strip_personal)
    .bind(state)
    .bind(reason)
    .bind(messages)
    .bind(due)
    .bind(at)
    .bind(route)
    .execute(conn)
    .await?;
    Ok(())
}

async fn bridge(
    conn: &mut PgConnection,
    sql: &'static str,
    kind: &str,
    id: &str,
) -> Result<Option<(Identity, Consent)>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(sql).bind(kind).bind(id).fetch_optional(conn).await?;
    row.map(|(i, c)| Ok((serde_json::from_str(&i)?, serde_json::from_str(&c)?))).transpose()
}

/// Merges a capture into the subject's bridge entry (its stated fields replace older ones) and
/// keeps the capture itself as history. The entry is merged under its row lock, so concurrent
/// captures of one subject apply one after the other and none loses the other's fields.
pub(super) async fn capture_identity(
    pool: &PgPool,
    capture: IdentityCapture,
    planner: &Planner,
    now: DateTime<Utc>,
) -> Result<Vec<PlannedDelivery>, StoreError> {
    let mut tx = pool.begin().await?;
    let out = capture_in(&mut tx, &capture, planner, now).await?;
    tx.commit().await?;
    Ok(out)
}

/// The subjects whose waiting deliveries a capture re-plans: its own, and the one it is an alias of.
pub(super) async fn capture_subjects(tx: &mut PgConnection, subject: &Subject) -> Result<Vec<Subject>, StoreError> {
    let mut subjects = vec![subject.clone()];
    let alias: Option<(String, String)> =
        sqlx::query_as("SELECT subject_type, subject_id FROM subject_aliases WHERE alias = $1")
            .bind(format!("{}:{}", subject.kind, subject.id))
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(target) = alias.map(|(kind, id)| Subject { kind, id }).filter(|t| t != subject) {
        subjects.push(target);
    }
    Ok(subjects)
}

/// [`capture_identity`] inside the caller's transaction.
pub(super) async fn capture_in(
    tx: &mut PgConnection,
    capture: &IdentityCapture,
    planner: &Planner,
    now: DateTime<Utc>,
) -> Result<Vec<PlannedDelivery>, StoreError> {
    let subject = &capture.subject;
    // The subjects whose waiting deliveries this capture re-plans: its own, and the one it is an
    // alias of. Their wait locks are taken first, so an event of theirs being ingested right now
    // either commits before (and is re-planned here) or joins this capture from the bridge.
    let subjects = capture_subjects(tx, subject).await?;
    let mut keys: Vec<i64> = subjects.iter().map(wait_lock).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock(k) FROM unnest($1::int8[]) AS k").bind(&keys).execute(&mut *tx).await?;
    let merged = loop {
        let current = bridge(tx, BRIDGE_FOR_UPDATE, &subject.kind, &subject.id).await?;
        let exists = current.is_some();
        let merged = crate::store::rules::merge_capture(current.unwrap_or_default(), capture)?;
        let (identity, consent) = (serde_json::to_string(&merged.0)?, serde_json::to_string(&merged.1)?);
        if exists {
            sqlx::query(
                "UPDATE identities SET identity = $3, consent = $4, captured_at = GREATEST(captured_at, $5), \
                 updated_at = $6 WHERE subject_type = $1 AND subject_id = $2",
            )
            .bind(&subject.kind)
            .bind(&subject.id)
            .bind(identity)
            .bind(consent)
            .bind(to_us(capture.captured_at))
            .bind(to_us(now))
            .execute(&mut *tx)
            .await?;
            break merged;
        }
        let inserted = sqlx::query(
            "INSERT INTO identities (subject_type, subject_id, identity, consent, captured_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject_type, subject_id) DO NOTHING",
        )
        .bind(&subject.kind)
        .bind(&subject.id)
        .bind(identity)
        .bind(consent)
        .bind(to_us(capture.captured_at))
        .bind(to_us(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 1 {
            break merged;
        }
        // Another process created the entry since (its insert committed before ours went on):
        // lock that one and merge into it.
    };
    sqlx::query(
        "INSERT INTO identity_captures (subject_type, subject_id, captured_at, received_at, identity, consent) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&subject.kind)
    .bind(&subject.id)
    .bind(to_us(capture.captured_at))
    .bind(to_us(now))
    .bind(serde_json::to_string(&capture.identity)?)
    .bind(serde_json::to_string(&capture.consent)?)
    .execute(&mut *tx)
    .await?;
    let mut out = Vec::new();
    for s in &subjects {
        out.extend(replan_waiting(tx, s, (&merged.0, &merged.1), planner, now).await?);
    }
    Ok(out)
}

/// Buckets of the advisory locks that order an identity capture and the ingest of an event that
/// waits for it (few buckets, so a large batch holds few locks).
const WAIT_LOCK_BUCKETS: u64 = 64;
/// Keeps these advisory lock keys apart from any other use of advisory locks.
const WAIT_LOCK_BASE: i64 = 0x5375_7265_7479_0000;

/// The advisory lock key of `subject`'s identity wait.
pub(super) fn wait_lock(subject: &Subject) -> i64 {
    let digest = crate::core::pii::sha256_hex(format!("{}:{}", subject.kind, subject.id).as_bytes());
    let n = u64::from_str_radix(&digest[..15], 16).unwrap_or(0);
    WAIT_LOCK_BASE + (n % WAIT_LOCK_BUCKETS) as i64
}

/// Takes the shared wait locks of the batch's events that plan a wait for identity, before any
/// bridge is read: a capture of their subject committing meanwhile is then seen by the join.
async fn lock_waits(conn: &mut PgConnection, prepared: &[(usize, EventToStore)]) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = prepared
        .iter()
        .filter(|(_, p)| p.planned.iter().any(|d| d.reason == Some(reason::AWAITING_IDENTITY)))
        .map(|(_, p)| wait_lock(&p.event.subject))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock_shared(k) FROM unnest($1::int8[]) AS k")
        .bind(&keys)
        .execute(conn)
        .await?;
    Ok(())
}

/// Re-plans `subject`'s deliveries waiting for its identity (waits still running; one that has
/// ended is the worker's to end as `no_identity`) with the merged bridge entry joined onto their
/// events, as `store::sqlite::ingest` does. The rows are locked; a worker claiming one at this
/// moment keeps it.
async fn replan_waiting(
    conn: &mut PgConnection,
    subject: &Subject,
    (identity, consent): (&Identity, &Consent),
    planner: &Planner,
    now: DateTime<Utc>,
) -> Result<Vec<PlannedDelivery>, StoreError> {
    let rows: Vec<(String, String, i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT e.event_id, e.body, d.id, d.destination, d.dest_event, d.route \
         FROM events e JOIN deliveries d ON d.event_id = e.event_id \
         WHERE e.subject_type = $1 AND e.subject_id = $2 AND d.state = 'pending' AND d.reason = $3 \
         AND d.next_attempt_at > $4 ORDER BY d.id FOR UPDATE OF d",
    )
    .bind(&subject.kind)
    .bind(&subject.id)
    .bind(reason::AWAITING_IDENTITY)
    .bind(to_us(now))
    .fetch_all(&mut *conn)
    .await?;
    let mut by_event: Vec<(String, String, Vec<Waiting>)> = Vec::new();
    for (event_id, body, delivery_id, destination, dest_event, route) in rows {
        let route = match route {
            Some(json) => serde_json::from_str(&json)?,
            None => Route { event: dest_event, ..Route::default() },
        };
        let waiting = Waiting { delivery_id, destination, route };
        match by_event.iter_mut().find(|(id, _, _)| *id == event_id) {
            Some((_, _, list)) => list.push(waiting),
            None => by_event.push((event_id, body, vec![waiting])),
        }
    }
    let mut out = Vec::new();
    for (event_id, body, waiting) in by_event {
        let mut event: Event = serde_json::from_str(&body)?;
        let joined_before = event.joined.len();
        join(&mut event, identity, consent);
        if let Some(user) =
            event.identity.user_id.clone().filter(|u| event.subject.kind != "user" || event.subject.id != *u)
        {
            if let Some((identity, consent)) = bridge(conn, BRIDGE, "user", &user).await? {
                join(&mut event, &identity, &consent);
            }
        }
        if event.joined.len() > joined_before {
            sqlx::query("UPDATE events SET body = $2 WHERE event_id = $1")
                .bind(&event_id)
                .bind(serde_json::to_string(&event)?)
                .execute(&mut *conn)
                .await?;
        }
        for r in replan(&event, waiting, planner, now) {
            let p = &r.planned;
            let messages = (!p.messages.is_empty()).then(|| serde_json::to_string(&p.messages)).transpose()?;
            sqlx::query(
                "UPDATE deliveries SET state = $2, reason = $3, messages = $4, strip_personal = $5, \
                 next_attempt_at = $6, updated_at = $7 WHERE id = $1",
            )
            .bind(r.delivery_id)
            .bind(p.state.as_str())
            .bind(p.reason)
            .bind(messages)
            .bind(p.strip_personal)
            .bind(r.due.map(to_us))
            .bind(to_us(now))
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO attempts (delivery_id, attempt, at, outcome, detail) \
                 SELECT id, attempt_base + attempts, $2, $3, $4 FROM deliveries WHERE id = $1",
            )
            .bind(r.delivery_id)
            .bind(to_us(now))
            .bind(REPLANNED)
            .bind(&r.detail)
            .execute(&mut *conn)
            .await?;
            out.push(r.view());
        }
    }
    Ok(out)
}

/// Inserts each receipt or counts a redelivery of it; true the first time. Rows are written in
/// (source, receipt id) order so concurrent batches cannot deadlock; answers are in input order.
pub(super) async fn record_receipts(pool: &PgPool, receipts: Vec<Receipt>) -> Result<Vec<bool>, StoreError> {
    let mut tx = pool.begin().await?;
    let first = receipts_in(&mut tx, &receipts).await?;
    tx.commit().await?;
    Ok(first)
}

/// [`record_receipts`] inside the caller's transaction.
pub(super) async fn receipts_in(tx: &mut PgConnection, receipts: &[Receipt]) -> Result<Vec<bool>, StoreError> {
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
pub(super) async fn record_aliases(
    pool: &PgPool,
    mut aliases: Vec<(String, Subject)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    aliases_in(&mut tx, &mut aliases, now).await?;
    tx.commit().await?;
    Ok(())
}

/// [`record_aliases`] inside the caller's transaction.
pub(super) async fn aliases_in(
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

pub(super) async fn resolve_alias(pool: &PgPool, alias: &str) -> Result<Option<Subject>, StoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT subject_type, subject_id FROM subject_aliases WHERE alias = $1")
            .bind(alias)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(kind, id)| Subject { kind, id }))
}

#[cfg(test)]
mod tests;
