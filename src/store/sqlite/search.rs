//! `Store::search` and `Store::list_events` on SQLite, and the search keys intake files
//! (`store::search`). Every lookup uses an index: `search_keys`' unique key, the events' `event_id`
//! and `subject_id` indexes, `receipts_receipt_id`, the aliases' primary key; a page of the event
//! list walks the events' primary key backwards from its cursor, at most `MAX_SCAN` rows, and
//! checks delivery filters through the `(event_id, destination)` index.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use super::{from_us, to_us};
use crate::core::{Event, Subject};
use crate::store::search::{
    add_match, cursor, in_event_time_order, receipt_event_ids, EventFilter, EventPage, EventSummary, MatchedBy,
    SearchKeys, SearchMatch, SearchResult, SummaryRow, MAX_EVENTS, MAX_PAGE, MAX_SCAN, MAX_SUBJECTS,
};
use crate::store::StoreError;

pub(super) fn record_keys(conn: &Connection, keys: &[(String, Subject)], at: DateTime<Utc>) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    // A key seen again is kept as long as its newest use (retention prunes by `created_at`).
    let mut insert = conn.prepare_cached(
        "INSERT INTO search_keys (key, subject_type, subject_id, created_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (key, subject_type, subject_id) DO UPDATE SET created_at = excluded.created_at \
         WHERE excluded.created_at > search_keys.created_at",
    )?;
    for (key, subject) in keys {
        insert.execute(params![key, subject.kind, subject.id, to_us(at)])?;
    }
    Ok(())
}

fn subject_of_event(conn: &Connection, event_id: &str) -> Result<Option<Subject>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT subject_type, subject_id FROM events WHERE event_id = ?1")?
        .query_row([event_id], |r| Ok(Subject { kind: r.get(0)?, id: r.get(1)? }))
        .optional()?)
}

fn subjects(conn: &Connection, sql: &str, arg: &str) -> Result<Vec<Subject>, StoreError> {
    let limit = (MAX_SUBJECTS + 1) as i64;
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params![arg, limit], |r| Ok(Subject { kind: r.get(0)?, id: r.get(1)? }))?
        .collect::<Result<Vec<_>, _>>()?)
}

/// The subjects `keys` name, and how.
fn matches(conn: &Connection, keys: &SearchKeys) -> Result<(Vec<SearchMatch>, bool), StoreError> {
    let mut found = Vec::new();
    let mut room = true;
    if let Some(s) = subject_of_event(conn, &keys.text)? {
        room &= add_match(&mut found, MatchedBy::EventId, s);
    }
    if let Some(s) = &keys.subject {
        let known: Option<i64> = conn
            .prepare_cached("SELECT 1 FROM events WHERE subject_type = ?1 AND subject_id = ?2 LIMIT 1")?
            .query_row([&s.kind, &s.id], |r| r.get(0))
            .optional()?;
        if known.is_some() {
            room &= add_match(&mut found, MatchedBy::Subject, s.clone());
        }
    }
    let by_id = "SELECT DISTINCT subject_type, subject_id FROM events WHERE subject_id = ?1 LIMIT ?2";
    for s in subjects(conn, by_id, &keys.text)? {
        room &= add_match(&mut found, MatchedBy::Subject, s);
    }
    let by_alias = "SELECT subject_type, subject_id FROM subject_aliases WHERE alias = ?1 LIMIT ?2";
    for alias in &keys.aliases {
        for s in subjects(conn, by_alias, alias)? {
            room &= add_match(&mut found, MatchedBy::Alias, s);
        }
    }
    let details = conn
        .prepare_cached("SELECT detail FROM receipts WHERE receipt_id = ?1 AND status = 'mapped' LIMIT ?2")?
        .query_map(params![keys.text, MAX_SUBJECTS as i64], |r| r.get::<_, Option<String>>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for id in details.iter().flatten().flat_map(|d| receipt_event_ids(d)) {
        if let Some(s) = subject_of_event(conn, &id)? {
            room &= add_match(&mut found, MatchedBy::Receipt, s);
        }
    }
    let by_key = "SELECT subject_type, subject_id FROM search_keys WHERE key = ?1 LIMIT ?2";
    for key in &keys.keys {
        for s in subjects(conn, by_key, key)? {
            room &= add_match(&mut found, MatchedBy::of_key(key), s);
        }
    }
    // A user found: the subjects whose events named that user too (an order placed by them).
    let users: Vec<String> = found.iter().filter(|m| m.subject.kind == "user").map(|m| m.subject.id.clone()).collect();
    for user in users {
        for s in subjects(conn, by_key, &format!("user_id:{user}"))? {
            room &= add_match(&mut found, MatchedBy::UserId, s);
        }
    }
    Ok((found, !room))
}

fn deliveries_of(conn: &Connection, event_id: &str) -> Result<Vec<crate::store::search::DeliverySummary>, StoreError> {
    conn.prepare_cached(
        "SELECT id, destination, state, reason, messages, attempts, next_attempt_at, updated_at \
         FROM deliveries WHERE event_id = ?1 ORDER BY destination",
    )?
    .query_map([event_id], |r| {
        Ok(SummaryRow {
            id: r.get(0)?,
            destination: r.get(1)?,
            state: r.get(2)?,
            reason: r.get(3)?,
            messages: r.get(4)?,
            attempts: r.get(5)?,
            next_attempt_at: r.get::<_, Option<i64>>(6)?.map(from_us),
            updated_at: from_us(r.get(7)?),
        })
    })?
    .map(|row| row?.into_summary())
    .collect()
}

fn summaries(conn: &Connection, events: Vec<(i64, Event)>) -> Result<Vec<EventSummary>, StoreError> {
    events.into_iter().map(|(_, e)| Ok(EventSummary::of(&e, deliveries_of(conn, e.event_id.as_str())?))).collect()
}

pub(super) fn search(conn: &Connection, keys: &SearchKeys) -> Result<SearchResult, StoreError> {
    let (matches, mut truncated) = matches(conn, keys)?;
    let mut events = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT seq, body FROM events WHERE subject_type = ?1 AND subject_id = ?2 ORDER BY occurred_at, seq LIMIT ?3",
    )?;
    for m in &matches {
        let rows = stmt
            .query_map(params![m.subject.kind, m.subject.id, (MAX_EVENTS + 1) as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        for (seq, body) in rows {
            events.push((seq, serde_json::from_str::<Event>(&body)?));
        }
    }
    let (events, more) = in_event_time_order(events);
    truncated |= more;
    Ok(SearchResult { matches, events: summaries(conn, events)?, truncated })
}

/// The `WHERE` of one page (after the `seq` bounds), with its arguments in order.
pub(super) fn page_sql(f: &EventFilter) -> (String, Vec<rusqlite::types::Value>) {
    let mut sql = String::from("SELECT seq, body FROM events e WHERE e.seq < ?1 AND e.seq >= ?2");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut push = |sql: &mut String, cond: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&cond.replace('#', &format!("?{}", args.len() + 2)));
    };
    if let Some(k) = &f.kind {
        push(&mut sql, " AND e.kind = #", k.clone().into());
    }
    if let Some(s) = &f.source {
        push(&mut sql, " AND e.source = #", s.clone().into());
    }
    if let Some(t) = f.since {
        push(&mut sql, " AND e.occurred_at >= #", to_us(t).into());
    }
    if let Some(t) = f.until {
        push(&mut sql, " AND e.occurred_at < #", to_us(t).into());
    }
    if f.destination.is_some() || f.state.is_some() || f.reason.is_some() {
        sql.push_str(" AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id");
        if let Some(d) = &f.destination {
            push(&mut sql, " AND d.destination = #", d.clone().into());
        }
        if let Some(s) = f.state {
            push(&mut sql, " AND d.state = #", s.as_str().to_owned().into());
        }
        if let Some(r) = &f.reason {
            push(&mut sql, " AND d.reason = #", r.clone().into());
        }
        sql.push(')');
    }
    push(&mut sql, " ORDER BY e.seq DESC LIMIT #", (f.limit.clamp(1, MAX_PAGE) as i64).into());
    (sql, args)
}

pub(super) fn list_events(conn: &Connection, f: &EventFilter) -> Result<EventPage, StoreError> {
    let before = f.before_seq.unwrap_or(i64::MAX);
    // The lowest `seq` this page may look at: at most MAX_SCAN events below the cursor.
    let floor: Option<i64> = conn
        .prepare_cached("SELECT seq FROM events WHERE seq < ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2")?
        .query_row(params![before, MAX_SCAN - 1], |r| r.get(0))
        .optional()?;
    let (sql, args) = page_sql(f);
    let mut all: Vec<rusqlite::types::Value> = vec![before.into(), floor.unwrap_or(0).into()];
    all.extend(args);
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(rusqlite::params_from_iter(all), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let limit = f.limit.clamp(1, MAX_PAGE);
    let next = match (rows.last(), floor) {
        (Some((seq, _)), _) if rows.len() == limit => Some(cursor(*seq)),
        // Fewer than asked, but the scan stopped before the ledger's start: go on below it.
        (_, Some(floor)) => conn
            .prepare_cached("SELECT 1 FROM events WHERE seq < ?1 LIMIT 1")?
            .query_row([floor], |r| r.get::<_, i64>(0))
            .optional()?
            .map(|_| cursor(floor)),
        _ => None,
    };
    let events = rows
        .into_iter()
        .map(|(seq, body)| Ok((seq, serde_json::from_str::<Event>(&body)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(EventPage { events: summaries(conn, events)?, next_cursor: next })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteStore, Synchronous};

    fn plan(conn: &Connection, sql: &str, args: usize) -> String {
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        let mut stmt = conn.prepare(&sql).unwrap();
        let params: Vec<rusqlite::types::Value> = (0..args).map(|_| rusqlite::types::Value::Null).collect();
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
    }

    /// What keeps the list and the search fast on a large ledger: a page walks the events'
    /// primary key from its cursor and checks delivery filters through the (event_id,
    /// destination) index; each search lookup is an index search, never a scan.
    #[test]
    fn every_lookup_uses_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        drop(SqliteStore::open(&path, Synchronous::Normal).unwrap());
        let conn = Connection::open(&path).unwrap();
        let filter = EventFilter {
            kind: Some("order_paid".into()),
            source: Some("stripe".into()),
            destination: Some("meta".into()),
            state: Some(crate::core::DeliveryState::Rejected),
            reason: Some("invalid".into()),
            since: Some(Utc::now()),
            until: Some(Utc::now()),
            limit: 50,
            before_seq: None,
        };
        let (sql, args) = page_sql(&filter);
        let page = plan(&conn, &sql, args.len() + 2);
        assert!(page.contains("SEARCH e USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{page}");
        assert!(
            page.contains("SEARCH d USING INDEX sqlite_autoindex_deliveries_1 (event_id=? AND destination=?)"),
            "{page}"
        );
        assert!(!page.contains("SCAN"), "{page}");
        for (sql, index) in [
            (
                "SELECT subject_type, subject_id FROM search_keys WHERE key = ?1 LIMIT ?2",
                "sqlite_autoindex_search_keys_1",
            ),
            (
                "SELECT DISTINCT subject_type, subject_id FROM events WHERE subject_id = ?1 LIMIT ?2",
                "events_subject_id",
            ),
            ("SELECT detail FROM receipts WHERE receipt_id = ?1 AND status = 'mapped' LIMIT ?2", "receipts_receipt_id"),
            ("SELECT subject_type, subject_id FROM events WHERE event_id = ?1 LIMIT ?2", "sqlite_autoindex_events_1"),
            ("SELECT seq, body FROM events WHERE subject_type = ?1 AND subject_id = ?2 LIMIT ?3", "events_subject"),
        ] {
            let args = sql.matches('?').count();
            let p = plan(&conn, sql, args);
            assert!(p.contains(index) && !p.contains("SCAN"), "{sql}: {p}");
        }
    }
}
