//! Reads and retention on PostgreSQL: one event's timeline, delivery lists, ledger totals,
//! receipts, and `prune`. Same queries and output as `store::sqlite::queries`; rows become views
//! through `store::views`. Orderings on text say `COLLATE "C"` and `NULLS FIRST` so they match
//! SQLite's byte order (NULL first) whatever the database's collation.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use super::rollups::DAY_OF;
use super::{from_us, to_us};
use crate::store::views::{self, DeliveryRow, EventRows};
use crate::store::{
    AttemptView, ConflictView, Counts, DeliveryFilter, DeliveryView, EventView, Pruned, QueueStat, ReceiptFilter,
    ReceiptView, ReplayView, StoreError,
};

/// A read that spans several statements sees one snapshot (SQLite's single reader sees the
/// writer's commits between statements; PostgreSQL can do better for the same cost).
const SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

const DELIVERY_COLUMNS: &str = "id, event_id, destination, dest_event, state, reason, messages, attempts, \
                                strip_personal, next_attempt_at, created_at, updated_at";

/// The states a delivery can end in and still let retention take its event (not `dead` or
/// `in_doubt`: those wait for a person). `PRUNABLE_STATES` is the same list in SQL.
const ENDED: [&str; 3] = ["delivered", "skipped", "rejected"];
const PRUNABLE_STATES: &str = "('delivered', 'skipped', 'rejected')";

fn delivery(r: &PgRow) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        id: r.try_get(0)?,
        event_id: r.try_get(1)?,
        destination: r.try_get(2)?,
        dest_event: r.try_get(3)?,
        state: r.try_get(4)?,
        reason: r.try_get(5)?,
        messages: r.try_get(6)?,
        attempts: unsigned(r.try_get::<i32, _>(7)?, "deliveries.attempts")?,
        strip_personal: r.try_get(8)?,
        next_attempt_at: r.try_get::<Option<i64>, _>(9)?.map(from_us),
        created_at: from_us(r.try_get(10)?),
        updated_at: from_us(r.try_get(11)?),
    })
}

/// A stored count or number that cannot be negative (SQLite's typed reads refuse these too).
fn unsigned<T: TryFrom<i64>>(v: impl Into<i64>, what: &str) -> Result<T, StoreError> {
    let v = v.into();
    T::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what} out of range: {v}")))
}

pub(super) async fn event(pool: &PgPool, event_id: &str) -> Result<Option<EventView>, StoreError> {
    let mut tx = pool.begin_with(SNAPSHOT).await?;
    let rows = event_rows(&mut tx, event_id).await?;
    tx.commit().await?;
    rows.map(EventRows::into_view).transpose()
}

async fn event_rows(conn: &mut PgConnection, event_id: &str) -> Result<Option<EventRows>, StoreError> {
    let row = sqlx::query("SELECT body, content_hash, routed FROM events WHERE event_id = $1")
        .bind(event_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let deliveries = sqlx::query(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = $1 ORDER BY id"))
        .bind(event_id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(delivery)
        .collect::<Result<Vec<_>, _>>()?;
    let attempts = sqlx::query(
        "SELECT a.delivery_id, a.attempt, a.at, a.outcome, a.detail, a.payload_sha256, a.forced, \
         q.endpoint, q.status, q.duration_us, q.error, q.response_excerpt, q.body_sha256, q.body \
         FROM attempts a JOIN deliveries d ON d.id = a.delivery_id LEFT JOIN requests q ON q.id = a.request_id \
         WHERE d.event_id = $1 ORDER BY a.id",
    )
    .bind(event_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(AttemptView {
            delivery_id: r.try_get(0)?,
            attempt: unsigned(r.try_get::<i32, _>(1)?, "attempts.attempt")?,
            at: from_us(r.try_get(2)?),
            outcome: r.try_get(3)?,
            detail: r.try_get(4)?,
            payload_sha256: r.try_get(5)?,
            forced: r.try_get(6)?,
            endpoint: r.try_get(7)?,
            http_status: r.try_get::<Option<i32>, _>(8)?.map(|s| unsigned(s, "requests.status")).transpose()?,
            duration_ms: views::duration_ms(r.try_get(9)?),
            error: r.try_get(10)?,
            response_excerpt: r.try_get(11)?,
            request_sha256: r.try_get(12)?,
            request_body: r.try_get(13)?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let replays = sqlx::query(
        "SELECT r.delivery_id, r.at, r.previous_state, r.previous_reason, r.forced, r.replayed_by FROM replays r \
         JOIN deliveries d ON d.id = r.delivery_id WHERE d.event_id = $1 ORDER BY r.id",
    )
    .bind(event_id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| {
        Ok(ReplayView {
            delivery_id: r.try_get(0)?,
            at: from_us(r.try_get(1)?),
            previous_state: r.try_get(2)?,
            previous_reason: r.try_get(3)?,
            forced: r.try_get(4)?,
            by: r.try_get(5)?,
        })
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let body: String = row.try_get(0)?;
    let conflicts =
        sqlx::query("SELECT received_at, content_hash, body FROM conflicts WHERE event_id = $1 ORDER BY id")
            .bind(event_id)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| {
                Ok(ConflictView {
                    received_at: from_us(r.try_get(0)?),
                    content_hash: r.try_get(1)?,
                    differs: views::differs(&body, r.try_get(2)?),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
    let settlements = super::settle::of_event(&mut *conn, event_id).await?;
    Ok(Some(EventRows {
        body,
        content_hash: row.try_get(1)?,
        routed: row.try_get(2)?,
        deliveries,
        attempts,
        replays,
        settlements,
        conflicts,
    }))
}

pub(super) async fn deliveries(pool: &PgPool, filter: DeliveryFilter) -> Result<Vec<DeliveryView>, StoreError> {
    // Only the filters given become SQL, so each combination gets a plan that uses its index.
    let mut q = QueryBuilder::<Postgres>::new(format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id > "));
    q.push_bind(filter.after.unwrap_or(0));
    if let Some(s) = filter.state {
        q.push(" AND state = ").push_bind(s.as_str());
    }
    if filter.needs_person {
        q.push(" AND state IN ").push(views::NEEDS_PERSON_SQL);
    }
    if let Some(d) = &filter.destination {
        q.push(" AND destination = ").push_bind(d);
    }
    if let Some(e) = &filter.event_id {
        q.push(" AND event_id = ").push_bind(e);
    }
    q.push(if filter.recent { " ORDER BY updated_at DESC, id DESC LIMIT " } else { " ORDER BY id LIMIT " })
        .push_bind(views::delivery_page(&filter));
    q.build().fetch_all(pool).await?.iter().map(|r| delivery(r)?.into_view()).collect()
}

pub(super) async fn counts(pool: &PgPool) -> Result<Counts, StoreError> {
    let mut tx = pool.begin_with(SNAPSHOT).await?;
    let totals = sqlx::query("SELECT count(*), count(*) FILTER (WHERE routed) FROM events").fetch_one(&mut *tx).await?;
    let (events, routed): (u64, u64) =
        (unsigned(totals.try_get::<i64, _>(0)?, "count")?, unsigned(totals.try_get::<i64, _>(1)?, "count")?);
    let conflicts = sqlx::query("SELECT count(*) FROM conflicts").fetch_one(&mut *tx).await?;
    let conflicts: u64 = unsigned(conflicts.try_get::<i64, _>(0)?, "count")?;
    let deliveries = sqlx::query(
        "SELECT destination, state, reason, count(*) FROM deliveries GROUP BY destination, state, reason \
         ORDER BY destination COLLATE \"C\", state COLLATE \"C\", reason COLLATE \"C\" NULLS FIRST",
    )
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|r| {
        let state: String = r.try_get(1)?;
        Ok((
            r.try_get(0)?,
            state.parse().map_err(StoreError::Corrupt)?,
            r.try_get(2)?,
            unsigned(r.try_get::<i64, _>(3)?, "count")?,
        ))
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let queues = live_queues(&mut tx).await?;
    tx.commit().await?;
    Ok(Counts { events, routed, not_routed: events - routed, conflicts, deliveries, queues })
}

pub(super) async fn queues(pool: &PgPool) -> Result<Vec<QueueStat>, StoreError> {
    let mut conn = pool.acquire().await?;
    live_queues(&mut conn).await
}

/// Reads only live deliveries (through `deliveries_state`), so it stays cheap however long the
/// ledger's history is.
async fn live_queues(conn: &mut PgConnection) -> Result<Vec<QueueStat>, StoreError> {
    sqlx::query(
        "SELECT destination, count(*), min(created_at) FROM deliveries \
         WHERE state IN ('pending', 'claimed', 'sending') GROUP BY destination ORDER BY destination COLLATE \"C\"",
    )
    .fetch_all(conn)
    .await?
    .iter()
    .map(|r| {
        Ok(QueueStat {
            destination: r.try_get(0)?,
            depth: unsigned(r.try_get::<i64, _>(1)?, "count")?,
            oldest: r.try_get::<Option<i64>, _>(2)?.map(from_us),
        })
    })
    .collect()
}

pub(super) async fn receipts(pool: &PgPool, filter: ReceiptFilter) -> Result<Vec<ReceiptView>, StoreError> {
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT source, receipt_id, topic, status, detail, first_at, last_at, times FROM receipts WHERE TRUE",
    );
    if let Some(s) = &filter.source {
        q.push(" AND source = ").push_bind(s);
    }
    if let Some(s) = &filter.status {
        q.push(" AND status = ").push_bind(s);
    }
    q.push(" ORDER BY last_at DESC, id DESC LIMIT ").push_bind(views::receipt_page(&filter));
    q.build()
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ReceiptView {
                source: r.try_get(0)?,
                receipt_id: r.try_get(1)?,
                topic: r.try_get(2)?,
                status: r.try_get(3)?,
                detail: r.try_get(4)?,
                first_at: from_us(r.try_get(5)?),
                last_at: from_us(r.try_get(6)?),
                times: unsigned(r.try_get::<i64, _>(7)?, "receipts.times")?,
            })
        })
        .collect()
}

/// Retention (see `Store::prune`), in one transaction. An event is ended when none of its
/// deliveries is pending, in flight, dead or in doubt: dead letters and in-doubt sends wait for a
/// person, whatever their age.
///
/// Other processes keep working meanwhile, so the chosen events are locked (`SKIP LOCKED`: two
/// prunes take different events) and their deliveries locked and checked again before anything
/// is deleted: a replay that put one back to pending after the choice keeps its event.
pub(super) async fn prune(pool: &PgPool, before: DateTime<Utc>, batch: usize) -> Result<Pruned, StoreError> {
    let cutoff = to_us(before);
    let limit = batch.max(1) as i64;
    let mut p = Pruned::default();
    let mut tx = pool.begin().await?;
    let mut ended: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT e.event_id FROM events e WHERE e.received_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id \
                         AND d.state NOT IN {PRUNABLE_STATES}) \
         ORDER BY e.seq LIMIT $2 FOR UPDATE OF e SKIP LOCKED"
    ))
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if !ended.is_empty() {
        // Locked now, so these states are the latest: an event one of whose deliveries came back
        // to life (a replay) between the choice and the lock stays.
        let states: Vec<(String, String)> =
            sqlx::query_as("SELECT event_id, state FROM deliveries WHERE event_id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ended)
                .fetch_all(&mut *tx)
                .await?;
        let live: Vec<&String> = states.iter().filter(|(_, s)| !ENDED.contains(&s.as_str())).map(|(e, _)| e).collect();
        ended.retain(|e| !live.contains(&e));
    }
    if !ended.is_empty() {
        let of_ended = "IN (SELECT id FROM deliveries WHERE event_id = ANY($1))";
        // The cached rollups of these events' days no longer say what the ledger holds (ADR 0008).
        let days = format!("SELECT {} FROM (SELECT occurred_at AS o FROM events WHERE event_id = ANY($1)) x", DAY_OF);
        delete(&mut tx, &format!("DELETE FROM day_rollups WHERE day IN ({days})"), &ended).await?;
        p.attempts = delete(&mut tx, &format!("DELETE FROM attempts WHERE delivery_id {of_ended}"), &ended).await?;
        delete(&mut tx, &format!("DELETE FROM replays WHERE delivery_id {of_ended}"), &ended).await?;
        delete(&mut tx, &format!("DELETE FROM settlements WHERE delivery_id {of_ended}"), &ended).await?;
        p.deliveries = delete(&mut tx, "DELETE FROM deliveries WHERE event_id = ANY($1)", &ended).await?;
        delete(&mut tx, "DELETE FROM conflicts WHERE event_id = ANY($1)", &ended).await?;
        p.events = delete(&mut tx, "DELETE FROM events WHERE event_id = ANY($1)", &ended).await?;
    }
    // Requests no remaining attempt refers to, unless a follow-up still asks about them.
    p.requests = older(
        &mut tx,
        "DELETE FROM requests WHERE id IN (SELECT r.id FROM requests r WHERE r.sent_at < $1 \
         AND r.follow_up_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.request_id = r.id) LIMIT $2)",
        cutoff,
        limit,
    )
    .await?;
    p.receipts = older(
        &mut tx,
        "DELETE FROM receipts WHERE id IN (SELECT id FROM receipts WHERE last_at < $1 LIMIT $2)",
        cutoff,
        limit,
    )
    .await?;
    p.aliases = older(
        &mut tx,
        "DELETE FROM subject_aliases WHERE alias IN (SELECT alias FROM subject_aliases WHERE created_at < $1 LIMIT $2)",
        cutoff,
        limit,
    )
    .await?;
    // Search keys are other names of subjects too (`store::search`), counted with the aliases.
    p.aliases += older(
        &mut tx,
        "DELETE FROM search_keys WHERE (key, subject_type, subject_id) IN \
         (SELECT key, subject_type, subject_id FROM search_keys WHERE created_at < $1 LIMIT $2)",
        cutoff,
        limit,
    )
    .await?;
    p.identities = older(
        &mut tx,
        "DELETE FROM identities WHERE (subject_type, subject_id) IN \
         (SELECT subject_type, subject_id FROM identities WHERE updated_at < $1 LIMIT $2)",
        cutoff,
        limit,
    )
    .await?;
    p.identity_captures = older(
        &mut tx,
        "DELETE FROM identity_captures WHERE id IN (SELECT id FROM identity_captures WHERE received_at < $1 LIMIT $2)",
        cutoff,
        limit,
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

async fn delete(conn: &mut PgConnection, sql: &str, event_ids: &[String]) -> Result<u64, StoreError> {
    Ok(sqlx::query(sql).bind(event_ids).execute(conn).await?.rows_affected())
}

async fn older(conn: &mut PgConnection, sql: &str, cutoff: i64, limit: i64) -> Result<u64, StoreError> {
    Ok(sqlx::query(sql).bind(cutoff).bind(limit).execute(conn).await?.rows_affected())
}

/// See `Store::subject_history`.
pub(super) async fn subject_history(
    pool: &PgPool,
    subject: &crate::core::Subject,
    destination: &str,
) -> Result<Vec<(crate::core::Event, String)>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT e.body, d.dest_event FROM events e \
         JOIN deliveries d ON d.event_id = e.event_id AND d.destination = $3 \
         WHERE e.subject_type = $1 AND e.subject_id = $2 ORDER BY e.occurred_at, e.seq",
    )
    .bind(&subject.kind)
    .bind(&subject.id)
    .bind(destination)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(|(body, action)| Ok((serde_json::from_str(&body)?, action))).collect()
}

pub(super) async fn next_due(pool: &PgPool, destination: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let due: Option<i64> =
        sqlx::query_scalar("SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND destination = $1")
            .bind(destination)
            .fetch_one(pool)
            .await?;
    Ok(due.map(from_us))
}

#[cfg(test)]
mod tests;
