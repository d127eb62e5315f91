//! `Store::search` and `Store::list_events` on PostgreSQL: the same lookups and pages as
//! `store::sqlite::search`, each read in one snapshot, and the search keys intake files (one
//! statement per message).

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

use super::{from_us, to_us};
use crate::core::{Event, Subject};
use crate::store::search::{
    add_match, cursor, in_event_time_order, receipt_event_ids, DeliverySummary, EventFilter, EventPage, EventSummary,
    MatchedBy, SearchKeys, SearchMatch, SearchResult, SummaryRow, MAX_EVENTS, MAX_PAGE, MAX_SCAN, MAX_SUBJECTS,
};
use crate::store::StoreError;

pub(super) async fn record_keys(
    tx: &mut PgConnection,
    keys: &[(String, Subject)],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if keys.is_empty() {
        return Ok(());
    }
    let (mut k, mut t, mut i) = (Vec::new(), Vec::new(), Vec::new());
    for (key, subject) in keys {
        k.push(key.as_str());
        t.push(subject.kind.as_str());
        i.push(subject.id.as_str());
    }
    // A key seen again is kept as long as its newest use (retention prunes by `created_at`).
    sqlx::query(
        "INSERT INTO search_keys (key, subject_type, subject_id, created_at) \
         SELECT k, t, i, $4 FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(k, t, i) \
         ON CONFLICT (key, subject_type, subject_id) DO UPDATE SET created_at = EXCLUDED.created_at \
         WHERE EXCLUDED.created_at > search_keys.created_at",
    )
    .bind(&k)
    .bind(&t)
    .bind(&i)
    .bind(to_us(at))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn subject(r: &PgRow) -> Result<Subject, StoreError> {
    Ok(Subject { kind: r.try_get(0)?, id: r.try_get(1)? })
}

async fn subjects(tx: &mut PgConnection, sql: &str, arg: &str) -> Result<Vec<Subject>, StoreError> {
    let rows = sqlx::query(sql).bind(arg).bind((MAX_SUBJECTS + 1) as i64).fetch_all(&mut *tx).await?;
    rows.iter().map(subject).collect()
}

const OF_EVENT: &str = "SELECT subject_type, subject_id FROM events WHERE event_id = $1 LIMIT $2";

/// The subjects `keys` name, and how.
async fn matches(tx: &mut PgConnection, keys: &SearchKeys) -> Result<(Vec<SearchMatch>, bool), StoreError> {
    let mut found = Vec::new();
    let mut room = true;
    for s in subjects(tx, OF_EVENT, &keys.text).await? {
        room &= add_match(&mut found, MatchedBy::EventId, s);
    }
    if let Some(s) = &keys.subject {
        let known = sqlx::query("SELECT 1 FROM events WHERE subject_type = $1 AND subject_id = $2 LIMIT 1")
            .bind(&s.kind)
            .bind(&s.id)
            .fetch_optional(&mut *tx)
            .await?;
        if known.is_some() {
            room &= add_match(&mut found, MatchedBy::Subject, s.clone());
        }
    }
    let by_id = "SELECT DISTINCT subject_type, subject_id FROM events WHERE subject_id = $1 LIMIT $2";
    for s in subjects(tx, by_id, &keys.text).await? {
        room &= add_match(&mut found, MatchedBy::Subject, s);
    }
    let by_alias = "SELECT subject_type, subject_id FROM subject_aliases WHERE alias = $1 LIMIT $2";
    for alias in &keys.aliases {
        for s in subjects(tx, by_alias, alias).await? {
            room &= add_match(&mut found, MatchedBy::Alias, s);
        }
    }
    let details: Vec<Option<String>> =
        sqlx::query_scalar("SELECT detail FROM receipts WHERE receipt_id = $1 AND status = 'mapped' LIMIT $2")
            .bind(&keys.text)
            .bind(MAX_SUBJECTS as i64)
            .fetch_all(&mut *tx)
            .await?;
    for id in details.iter().flatten().flat_map(|d| receipt_event_ids(d)) {
        for s in subjects(tx, OF_EVENT, &id).await? {
            room &= add_match(&mut found, MatchedBy::Receipt, s);
        }
    }
    let by_key = "SELECT subject_type, subject_id FROM search_keys WHERE key = $1 LIMIT $2";
    for key in &keys.keys {
        for s in subjects(tx, by_key, key).await? {
            room &= add_match(&mut found, MatchedBy::of_key(key), s);
        }
    }
    // A user found: the subjects whose events named that user too (an order placed by them).
    let users: Vec<String> = found.iter().filter(|m| m.subject.kind == "user").map(|m| m.subject.id.clone()).collect();
    for user in users {
        for s in subjects(tx, by_key, &format!("user_id:{user}")).await? {
            room &= add_match(&mut found, MatchedBy::UserId, s);
        }
    }
    Ok((found, !room))
}

/// The events with their deliveries (one query for all of them), in the order given.
async fn summaries(tx: &mut PgConnection, events: Vec<(i64, Event)>) -> Result<Vec<EventSummary>, StoreError> {
    let ids: Vec<&str> = events.iter().map(|(_, e)| e.event_id.as_str()).collect();
    let rows = sqlx::query(
        "SELECT event_id, id, destination, state, reason, messages, attempts, next_attempt_at, updated_at \
         FROM deliveries WHERE event_id = ANY($1) ORDER BY destination",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut by_event: Vec<(String, DeliverySummary)> = Vec::with_capacity(rows.len());
    for r in &rows {
        let attempts: i32 = r.try_get(6)?;
        let row = SummaryRow {
            id: r.try_get(1)?,
            destination: r.try_get(2)?,
            state: r.try_get(3)?,
            reason: r.try_get(4)?,
            messages: r.try_get(5)?,
            attempts: u32::try_from(attempts)
                .map_err(|_| StoreError::Corrupt(format!("deliveries.attempts is negative: {attempts}")))?,
            next_attempt_at: r.try_get::<Option<i64>, _>(7)?.map(from_us),
            updated_at: from_us(r.try_get(8)?),
        };
        by_event.push((r.try_get(0)?, row.into_summary()?));
    }
    Ok(events
        .into_iter()
        .map(|(_, e)| {
            let mine = by_event.iter().filter(|(id, _)| id == e.event_id.as_str()).map(|(_, d)| d.clone()).collect();
            EventSummary::of(&e, mine)
        })
        .collect())
}

fn seq_and_event(r: &PgRow) -> Result<(i64, Event), StoreError> {
    Ok((r.try_get(0)?, serde_json::from_str(&r.try_get::<String, _>(1)?)?))
}

pub(super) async fn search(pool: &PgPool, keys: &SearchKeys) -> Result<SearchResult, StoreError> {
    let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    let (matches, mut truncated) = matches(&mut tx, keys).await?;
    let mut events = Vec::new();
    for m in &matches {
        let rows = sqlx::query(
            "SELECT seq, body FROM events WHERE subject_type = $1 AND subject_id = $2 \
             ORDER BY occurred_at, seq LIMIT $3",
        )
        .bind(&m.subject.kind)
        .bind(&m.subject.id)
        .bind((MAX_EVENTS + 1) as i64)
        .fetch_all(&mut *tx)
        .await?;
        for r in &rows {
            events.push(seq_and_event(r)?);
        }
    }
    let (events, more) = in_event_time_order(events);
    truncated |= more;
    let events = summaries(&mut tx, events).await?;
    tx.commit().await?;
    Ok(SearchResult { matches, events, truncated })
}

enum Arg {
    Int(i64),
    Text(String),
}

/// One page's query: below the cursor, at or above the scan's floor, as the filter says.
fn page_sql(f: &EventFilter) -> (String, Vec<Arg>) {
    let mut sql = String::from("SELECT seq, body FROM events e WHERE e.seq < $1 AND e.seq >= $2");
    let mut args: Vec<Arg> = Vec::new();
    let mut push = |sql: &mut String, cond: &str, v: Arg| {
        args.push(v);
        sql.push_str(&cond.replace('#', &format!("${}", args.len() + 2)));
    };
    if let Some(k) = &f.kind {
        push(&mut sql, " AND e.kind = #", Arg::Text(k.clone()));
    }
    if let Some(s) = &f.source {
        push(&mut sql, " AND e.source = #", Arg::Text(s.clone()));
    }
    if let Some(t) = f.since {
        push(&mut sql, " AND e.occurred_at >= #", Arg::Int(to_us(t)));
    }
    if let Some(t) = f.until {
        push(&mut sql, " AND e.occurred_at < #", Arg::Int(to_us(t)));
    }
    if f.destination.is_some() || f.state.is_some() || f.reason.is_some() {
        sql.push_str(" AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.event_id");
        if let Some(d) = &f.destination {
            push(&mut sql, " AND d.destination = #", Arg::Text(d.clone()));
        }
        if let Some(s) = f.state {
            push(&mut sql, " AND d.state = #", Arg::Text(s.as_str().to_owned()));
        }
        if let Some(r) = &f.reason {
            push(&mut sql, " AND d.reason = #", Arg::Text(r.clone()));
        }
        sql.push(')');
    }
    push(&mut sql, " ORDER BY e.seq DESC LIMIT #", Arg::Int(f.limit.clamp(1, MAX_PAGE) as i64));
    (sql, args)
}

pub(super) async fn list_events(pool: &PgPool, f: &EventFilter) -> Result<EventPage, StoreError> {
    let before = f.before_seq.unwrap_or(i64::MAX);
    let mut tx = pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
    // The lowest `seq` this page may look at: at most MAX_SCAN events below the cursor.
    let floor: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM events WHERE seq < $1 ORDER BY seq DESC LIMIT 1 OFFSET $2")
            .bind(before)
            .bind(MAX_SCAN - 1)
            .fetch_optional(&mut *tx)
            .await?;
    let (sql, args) = page_sql(f);
    let mut query = sqlx::query(&sql).bind(before).bind(floor.unwrap_or(0));
    for a in args {
        query = match a {
            Arg::Int(v) => query.bind(v),
            Arg::Text(v) => query.bind(v),
        };
    }
    let rows = query.fetch_all(&mut *tx).await?;
    let events = rows.iter().map(seq_and_event).collect::<Result<Vec<_>, StoreError>>()?;
    let limit = f.limit.clamp(1, MAX_PAGE);
    let next = match (events.last(), floor) {
        (Some((seq, _)), _) if events.len() == limit => Some(cursor(*seq)),
        // Fewer than asked, but the scan stopped before the ledger's start: go on below it.
        (_, Some(floor)) => sqlx::query("SELECT 1 FROM events WHERE seq < $1 LIMIT 1")
            .bind(floor)
            .fetch_optional(&mut *tx)
            .await?
            .map(|_| cursor(floor)),
        _ => None,
    };
    let events = summaries(&mut tx, events).await?;
    tx.commit().await?;
    Ok(EventPage { events, next_cursor: next })
}
