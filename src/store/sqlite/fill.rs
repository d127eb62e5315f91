//! `store::fill` on SQLite: prepared statements, one transaction per [`CHUNK`] events.

use std::path::Path;

use rusqlite::{params, Connection};

use super::Synchronous;
use crate::store::fill::{HistorySpec, CHUNK, PER_REQUEST};
use crate::store::StoreError;

pub(crate) fn fill_history(path: &Path, spec: &HistorySpec) -> Result<(), StoreError> {
    let mut conn = Connection::open(path)?;
    // Not durable until the end, which is all a bench's history needs.
    super::configure(&conn, Synchronous::Normal)?;
    super::migrate(&mut conn)?;
    // A small page cache: the writes append to each index, and the bench's peak memory should be
    // the server's, not the fill's (whose connection closes before the server starts).
    conn.execute_batch("PRAGMA cache_size = -8192")?;
    let mut start = 0;
    while start < spec.events {
        let end = start.saturating_add(CHUNK).min(spec.events);
        let tx = conn.transaction()?;
        chunk(&tx, spec, start, end)?;
        tx.commit()?;
        start = end;
    }
    Ok(())
}

fn chunk(conn: &Connection, spec: &HistorySpec, start: u64, end: u64) -> Result<(), StoreError> {
    let mut event = conn.prepare_cached(
        "INSERT INTO events (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, \
         content_hash, routed, body) VALUES (?1, ?2, 'api', ?3, ?4, ?5, ?6, ?7, 1, ?8)",
    )?;
    let mut delivery = conn.prepare_cached(
        "INSERT INTO deliveries (event_id, destination, dest_event, browser_tracked, strip_personal, state, \
         attempts, created_at, updated_at, route) VALUES (?1, ?2, ?3, 0, 0, 'delivered', 1, ?4, ?5, ?6)",
    )?;
    let mut request = conn.prepare_cached(
        "INSERT INTO requests (destination, endpoint, sent_at, duration_us, status, response_excerpt, body_sha256) \
         VALUES (?1, 'history', ?2, 180000, 200, '{}', ?3)",
    )?;
    let mut attempt = conn.prepare_cached(
        "INSERT INTO attempts (delivery_id, request_id, attempt, at, outcome, payload_sha256) \
         VALUES (?1, ?2, 1, ?3, 'delivered', ?4)",
    )?;
    let mut key = conn.prepare_cached(
        "INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut request_id = 0;
    for n in start..end {
        let r = spec.row(n);
        let sent = r.received_us + 2_000_000;
        let hash = format!("{n:064x}");
        if n % PER_REQUEST == 0 || request_id == 0 {
            request.execute(params![spec.destination, sent, hash])?;
            request_id = conn.last_insert_rowid();
        }
        event.execute(params![
            r.event_id,
            spec.kind,
            spec.subject_type,
            r.subject_id,
            r.occurred_us,
            r.received_us,
            hash,
            spec.body(&r)
        ])?;
        delivery.execute(params![
            r.event_id,
            spec.destination,
            spec.dest_event,
            r.received_us,
            sent + 180_000,
            spec.route
        ])?;
        attempt.execute(params![conn.last_insert_rowid(), request_id, sent, hash])?;
        key.execute(params![format!("email:{}", r.email), spec.subject_type, r.subject_id, r.received_us])?;
        key.execute(params![format!("phone:{}", r.phone), spec.subject_type, r.subject_id, r.received_us])?;
    }
    Ok(())
}
