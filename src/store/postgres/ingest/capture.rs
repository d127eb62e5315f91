//! Identity captures on PostgreSQL, inside the caller's transaction: the bridge entry merged
//! under its row lock, the capture kept as history, and the subject's deliveries waiting for
//! identity re-planned. The advisory wait locks that order a capture against the ingest of an
//! event waiting for it live here too.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::core::delivery::reason;
use crate::core::plan::{join, Planner};
use crate::core::{Consent, Event, Identity, Route, Subject};
use crate::store::identity_wait::{replan, Waiting, REPLANNED};
use crate::store::postgres::to_us;
use crate::store::prepare::EventToStore;
use crate::store::{IdentityCapture, PlannedDelivery, StoreError};

const BRIDGE: &str = "SELECT identity, consent FROM identities WHERE subject_type = $1 AND subject_id = $2";
const BRIDGE_FOR_UPDATE: &str =
    "SELECT identity, consent FROM identities WHERE subject_type = $1 AND subject_id = $2 FOR UPDATE";

async fn bridge(
    conn: &mut PgConnection,
    sql: &'static str,
    kind: &str,
    id: &str,
) -> Result<Option<(Identity, Consent)>, StoreError> {
    let row: Option<(String, String)> = sqlx::query_as(sql).bind(kind).bind(id).fetch_optional(conn).await?;
    row.map(|(i, c)| Ok((serde_json::from_str(&i)?, serde_json::from_str(&c)?))).transpose()
}

/// The subjects whose waiting deliveries a capture re-plans: its own, and the one it is an alias of.
pub(in crate::store::postgres) async fn capture_subjects(
    tx: &mut PgConnection,
    subject: &Subject,
) -> Result<Vec<Subject>, StoreError> {
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

/// Merges a capture into the subject's bridge entry (its stated fields replace older ones) and
/// keeps the capture itself as history, inside the caller's transaction. The entry is merged
/// under its row lock, so concurrent captures of one subject apply one after the other and none
/// loses the other's fields.
pub(in crate::store::postgres) async fn capture_in(
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
pub(in crate::store::postgres) fn wait_lock(subject: &Subject) -> i64 {
    let digest = crate::core::pii::sha256_hex(format!("{}:{}", subject.kind, subject.id).as_bytes());
    let n = u64::from_str_radix(&digest[..15], 16).unwrap_or(0);
    WAIT_LOCK_BASE + (n % WAIT_LOCK_BUCKETS) as i64
}

/// Takes the shared wait locks of the batch's events that plan a wait for identity, before any
/// bridge is read: a capture of their subject committing meanwhile is then seen by the join.
pub(super) async fn lock_waits(conn: &mut PgConnection, prepared: &[EventToStore]) -> Result<(), StoreError> {
    let mut keys: Vec<i64> = prepared
        .iter()
        .filter(|p| p.planned.iter().any(|d| d.reason == Some(reason::AWAITING_IDENTITY)))
        .map(|p| wait_lock(&p.event.subject))
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
            // changed_at: a cached rollup of its day counts what it carried (ADR 0008).
            sqlx::query("UPDATE events SET body = $2, changed_at = $3 WHERE event_id = $1")
                .bind(&event_id)
                .bind(serde_json::to_string(&event)?)
                .bind(to_us(now))
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
