//! Reads: one event's timeline, delivery lists, ledger totals.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::from_us;
use crate::core::Subject;
use crate::store::views::{self, DeliveryRow, EventRows};
use crate::store::{
    AttemptView, ConflictView, Counts, DeliveryFilter, DeliveryView, EventView, Pruned, QueueStat, Receipt,
    ReceiptFilter, ReceiptView, ReplayView, StoreError,
};

const DELIVERY_COLUMNS: &str = "id, event_id, destination, dest_event, state, reason, messages, attempts, \
                                strip_personal, next_attempt_at, created_at, updated_at";

/// `counts`: the totals the triggers of migration 0014 keep.
pub(super) const COUNTS: &str =
    "SELECT kind, destination, state, reason, n FROM ledger_counts WHERE n > 0 ORDER BY kind, destination, state, reason";

/// `next_due`.
pub(super) const NEXT_DUE: &str =
    "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND destination = ?1";

/// `queues` (per `/metrics` scrape).
pub(super) const QUEUES: &str = "SELECT destination, count(*), min(created_at) FROM deliveries \
             WHERE state IN ('pending', 'claimed', 'sending') GROUP BY destination ORDER BY destination";

fn delivery(r: &Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        event_id: r.get(1)?,
        destination: r.get(2)?,
        dest_event: r.get(3)?,
        state: r.get(4)?,
        reason: r.get(5)?,
        messages: r.get(6)?,
        attempts: r.get(7)?,
        strip_personal: r.get(8)?,
        next_attempt_at: r.get::<_, Option<i64>>(9)?.map(from_us),
        created_at: from_us(r.get(10)?),
        updated_at: from_us(r.get(11)?),
    })
}

pub(super) fn event(conn: &Connection, event_id: &str) -> Result<Option<EventView>, StoreError> {
    let row: Option<(String, String, bool)> = conn
        .prepare_cached("SELECT body, content_hash, routed FROM events WHERE event_id = ?1")?
        .query_row([event_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((body, content_hash, routed)) = row else {
        return Ok(None);
    };
    let deliveries = conn
        .prepare_cached(&format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = ?1 ORDER BY id"))?
        .query_map([event_id], delivery)?
        .collect::<Result<Vec<_>, _>>()?;
    let attempts = conn
        .prepare_cached(
            "SELECT a.delivery_id, a.attempt, a.at, a.outcome, a.detail, a.payload_sha256, a.forced, \
             q.endpoint, q.status, q.duration_us, q.error, q.response_excerpt, q.body_sha256, q.body \
             FROM attempts a JOIN deliveries d ON d.id = a.delivery_id LEFT JOIN requests q ON q.id = a.request_id \
             WHERE d.event_id = ?1 ORDER BY a.id",
        )?
        .query_map([event_id], |r| {
            Ok(AttemptView {
                delivery_id: r.get(0)?,
                attempt: r.get(1)?,
                at: from_us(r.get(2)?),
                outcome: r.get(3)?,
                detail: r.get(4)?,
                payload_sha256: r.get(5)?,
                forced: r.get(6)?,
                endpoint: r.get(7)?,
                http_status: r.get(8)?,
                duration_ms: views::duration_ms(r.get(9)?),
                error: r.get(10)?,
                response_excerpt: r.get(11)?,
                request_sha256: r.get(12)?,
                request_body: r.get(13)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let replays = conn
        .prepare_cached(
            "SELECT r.delivery_id, r.at, r.previous_state, r.previous_reason, r.forced, r.replayed_by FROM replays r \
             JOIN deliveries d ON d.id = r.delivery_id WHERE d.event_id = ?1 ORDER BY r.id",
        )?
        .query_map([event_id], |r| {
            Ok(ReplayView {
                delivery_id: r.get(0)?,
                at: from_us(r.get(1)?),
                previous_state: r.get(2)?,
                previous_reason: r.get(3)?,
                forced: r.get(4)?,
                by: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let conflicts = conn
        .prepare_cached("SELECT received_at, content_hash, body FROM conflicts WHERE event_id = ?1 ORDER BY id")?
        .query_map([event_id], |r| {
            Ok(ConflictView {
                received_at: from_us(r.get(0)?),
                content_hash: r.get(1)?,
                differs: views::differs(&body, &r.get::<_, String>(2)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let settlements = super::settle::of_event(conn, event_id)?;
    EventRows { body, content_hash, routed, deliveries, attempts, replays, settlements, conflicts }
        .into_view()
        .map(Some)
}

pub(super) fn deliveries(conn: &Connection, f: &DeliveryFilter) -> Result<Vec<DeliveryView>, StoreError> {
    let (sql, args) = deliveries_sql(f);
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), delivery)?
        .map(|r| r?.into_view())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The list's query: the newest that need a person (the dashboard's first screen) walk their
/// partial index backwards and stop at the page's end, however many ended before them.
pub(super) fn deliveries_sql(f: &DeliveryFilter) -> (String, Vec<rusqlite::types::Value>) {
    let table = if f.recent && f.needs_person { "deliveries INDEXED BY deliveries_needs_person" } else { "deliveries" };
    let mut sql = format!("SELECT {DELIVERY_COLUMNS} FROM {table} WHERE id > ?");
    let mut args: Vec<rusqlite::types::Value> = vec![f.after.unwrap_or(0).into()];
    if let Some(s) = f.state {
        sql.push_str(" AND state = ?");
        args.push(s.as_str().to_owned().into());
    }
    if f.needs_person {
        sql.push_str(&format!(" AND state IN {}", views::NEEDS_PERSON_SQL));
    }
    if let Some(d) = &f.destination {
        sql.push_str(" AND destination = ?");
        args.push(d.clone().into());
    }
    if let Some(e) = &f.event_id {
        sql.push_str(" AND event_id = ?");
        args.push(e.clone().into());
    }
    sql.push_str(if f.recent { " ORDER BY updated_at DESC, id DESC LIMIT ?" } else { " ORDER BY id LIMIT ?" });
    args.push(views::delivery_page(f).into());
    (sql, args)
}

pub(super) fn counts(conn: &Connection) -> Result<Counts, StoreError> {
    // Kept by triggers (migration 0014): a handful of rows, however long the history.
    let rows: Vec<(String, String, String, String, u64)> = conn
        .prepare_cached(COUNTS)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
        .collect::<Result<_, _>>()?;
    let (mut events, mut routed, mut conflicts, mut deliveries) = (0u64, 0u64, 0u64, Vec::new());
    for (kind, destination, state, reason, n) in rows {
        match kind.as_str() {
            "event" => {
                events = events.saturating_add(n);
                if state == "1" {
                    routed = routed.saturating_add(n);
                }
            }
            "conflict" => conflicts = conflicts.saturating_add(n),
            _ => {
                let reason = (!reason.is_empty()).then_some(reason);
                deliveries.push((destination, state.parse().map_err(StoreError::Corrupt)?, reason, n));
            }
        }
    }
    Ok(Counts {
        events,
        routed,
        not_routed: events.saturating_sub(routed),
        conflicts,
        deliveries,
        queues: queues(conn)?,
    })
}

pub(super) fn queues(conn: &Connection) -> Result<Vec<QueueStat>, StoreError> {
    Ok(conn
        .prepare_cached(QUEUES)?
        .query_map([], |r| {
            Ok(QueueStat { destination: r.get(0)?, depth: r.get(1)?, oldest: r.get::<_, Option<i64>>(2)?.map(from_us) })
        })?
        .collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn next_due(conn: &Connection, destination: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    let due: Option<i64> = conn.prepare_cached(NEXT_DUE)?.query_row(params![destination], |r| r.get(0))?;
    Ok(due.map(from_us))
}

/// Inserts a receipt or counts a redelivery of it; true the first time.
/// Only the filters given, so a status filter (the dashboard's refused receipts) walks
/// `receipts_status` backwards instead of scanning every receipt.
pub(super) fn receipts_sql(f: &ReceiptFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::from(
        "SELECT source, receipt_id, topic, status, detail, first_at, last_at, times FROM receipts WHERE 1 = 1",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    for (column, value) in [("source", &f.source), ("status", &f.status)] {
        if let Some(v) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            args.push(v.clone().into());
        }
    }
    sql.push_str(" ORDER BY last_at DESC, id DESC LIMIT ?");
    args.push(views::receipt_page(f).into());
    (sql, args)
}

pub(super) fn record_receipt(conn: &Connection, r: &Receipt) -> Result<bool, StoreError> {
    let at = super::to_us(r.at);
    let times: u64 = conn
        .prepare_cached(
            "INSERT INTO receipts (source, receipt_id, topic, status, detail, first_at, last_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (source, receipt_id) DO UPDATE SET times = times + 1, last_at = ?6 RETURNING times",
        )?
        .query_row(params![r.source, r.receipt_id, r.topic, r.status.as_str(), r.detail, at], |row| row.get(0))?;
    Ok(times == 1)
}

pub(super) fn receipts(conn: &Connection, f: &ReceiptFilter) -> Result<Vec<ReceiptView>, StoreError> {
    let (sql, args) = receipts_sql(f);
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok(ReceiptView {
                source: r.get(0)?,
                receipt_id: r.get(1)?,
                topic: r.get(2)?,
                status: r.get(3)?,
                detail: r.get(4)?,
                first_at: from_us(r.get(5)?),
                last_at: from_us(r.get(6)?),
                times: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

pub(super) fn record_aliases(
    conn: &Connection,
    aliases: &[(String, Subject)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO subject_aliases (alias, subject_type, subject_id, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (alias) DO NOTHING",
    )?;
    for (alias, subject) in aliases {
        insert.execute(params![alias, subject.kind, subject.id, super::to_us(now)])?;
    }
    Ok(())
}

pub(super) fn resolve_alias(conn: &Connection, alias: &str) -> Result<Option<Subject>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT subject_type, subject_id FROM subject_aliases WHERE alias = ?1")?
        .query_row([alias], |r| Ok(Subject { kind: r.get(0)?, id: r.get(1)? }))
        .optional()?)
}

/// See `Store::subject_history`.
pub(super) fn subject_history(
    conn: &Connection,
    subject: &Subject,
    destination: &str,
) -> Result<Vec<(crate::core::Event, String)>, StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached(
            "SELECT e.body, d.dest_event FROM events e \
             JOIN deliveries d ON d.event_id = e.event_id AND d.destination = ?3 \
             WHERE e.subject_type = ?1 AND e.subject_id = ?2 ORDER BY e.occurred_at, e.seq",
        )?
        .query_map(params![subject.kind, subject.id, destination], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(|(body, action)| Ok((serde_json::from_str(&body)?, action))).collect()
}

/// Retention (see `Store::prune`). An event is ended when none of its deliveries is pending, in
/// flight, dead or in doubt: dead letters and in-doubt sends wait for a person, whatever their age.
pub(super) fn prune(conn: &Connection, before: DateTime<Utc>, batch: usize) -> Result<Pruned, StoreError> {
    let cutoff = super::to_us(before);
    let limit = batch.max(1) as i64;
    let mut p = Pruned::default();
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS prune_events (event_id TEXT PRIMARY KEY); DELETE FROM prune_events;",
    )?;
    conn.prepare_cached(
        "INSERT INTO prune_events (event_id) SELECT e.event_id FROM events e WHERE e.received_at < ?1 \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id \
                         AND d.state NOT IN ('delivered', 'skipped', 'rejected')) \
         ORDER BY e.seq LIMIT ?2",
    )?
    .execute(params![cutoff, limit])?;
    // The cached rollups of the pruned events' days no longer say what the ledger holds (ADR 0008).
    conn.execute(
        &format!(
            "DELETE FROM day_rollups WHERE day IN (SELECT DISTINCT {} FROM (SELECT occurred_at AS o FROM events \
             WHERE event_id IN (SELECT event_id FROM prune_events)))",
            super::rollups::DAY_OF
        ),
        [],
    )?;
    let in_set = "IN (SELECT id FROM deliveries WHERE event_id IN (SELECT event_id FROM prune_events))";
    p.attempts = conn.execute(&format!("DELETE FROM attempts WHERE delivery_id {in_set}"), [])? as u64;
    conn.execute(&format!("DELETE FROM replays WHERE delivery_id {in_set}"), [])?;
    conn.execute(&format!("DELETE FROM settlements WHERE delivery_id {in_set}"), [])?;
    p.deliveries =
        conn.execute("DELETE FROM deliveries WHERE event_id IN (SELECT event_id FROM prune_events)", [])? as u64;
    conn.execute("DELETE FROM conflicts WHERE event_id IN (SELECT event_id FROM prune_events)", [])?;
    p.events = conn.execute("DELETE FROM events WHERE event_id IN (SELECT event_id FROM prune_events)", [])? as u64;
    // Requests no remaining attempt refers to, unless a follow-up still asks about them.
    p.requests = conn
        .prepare_cached(
            "DELETE FROM requests WHERE id IN (SELECT r.id FROM requests r WHERE r.sent_at < ?1 \
             AND r.follow_up_at IS NULL \
             AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.request_id = r.id) LIMIT ?2)",
        )?
        .execute(params![cutoff, limit])? as u64;
    let older = |sql: &str| -> Result<u64, StoreError> {
        Ok(conn.prepare_cached(sql)?.execute(params![cutoff, limit])? as u64)
    };
    p.receipts = older("DELETE FROM receipts WHERE id IN (SELECT id FROM receipts WHERE last_at < ?1 LIMIT ?2)")?;
    p.aliases = older(
        "DELETE FROM subject_aliases WHERE rowid IN (SELECT rowid FROM subject_aliases WHERE created_at < ?1 LIMIT ?2)",
    )?;
    // Search keys are other names of subjects too (`store::search`), counted with the aliases.
    p.aliases +=
        older("DELETE FROM search_keys WHERE rowid IN (SELECT rowid FROM search_keys WHERE created_at < ?1 LIMIT ?2)")?;
    p.identities =
        older("DELETE FROM identities WHERE rowid IN (SELECT rowid FROM identities WHERE updated_at < ?1 LIMIT ?2)")?;
    p.identity_captures = older(
        "DELETE FROM identity_captures WHERE id IN (SELECT id FROM identity_captures WHERE received_at < ?1 LIMIT ?2)",
    )?;
    Ok(p)
}
