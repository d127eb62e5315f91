//! Ingest writes on PostgreSQL: dedupe by `event_id`, join from the identity bridge, plan, commit
//! — the semantics of `store::sqlite::ingest`, made safe for several processes writing at once.
//!
//! Without a single writer, uniqueness is the database's: an event is claimed by inserting it
//! (`ON CONFLICT DO NOTHING`), and a bridge entry is merged under its row lock. Every batch takes
//! its row locks in key order, so two batches sharing keys wait for each other, never deadlock.

mod capture;
mod names;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::PgConnection;

use self::capture::lock_waits;
pub(super) use self::capture::{capture_in, capture_subjects, wait_lock};
pub(super) use self::names::{aliases_in, receipts_in, resolve_alias};
use super::to_us;
use crate::core::plan::{join, Planned, Planner};
use crate::core::{Consent, DeliveryState, Event, Identity};
use crate::store::prepare::{prepare, EventToStore};
use crate::store::{IngestResult, IngestStatus, PlannedDelivery, StoreError};

/// Batches larger than this are prepared on the blocking pool, as the SQLite store does.
const PREPARE_INLINE: usize = 16;

/// A planned delivery waiting for the batch's one insert.
struct NewDelivery<'a> {
    event_id: &'a str,
    /// The event's `received_at`: when it was planned, and due if pending.
    at: i64,
    planned: &'a Planned,
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

/// [`ingest`] inside the caller's transaction, set-based: a fixed handful of statements per
/// batch whatever its size (the bridge entries read at once, the events inserted by one
/// statement, the stored hashes of those not inserted read at once, then the conflicts and the
/// deliveries each in one statement).
pub(super) async fn ingest_in(
    tx: &mut PgConnection,
    prepared: &[EventToStore],
    planner: &Planner,
) -> Result<Vec<IngestResult>, StoreError> {
    lock_waits(tx, prepared).await?;
    let batch = join_all(tx, prepared, planner).await?;
    // Lock order is event_id order; the sort is stable, so an id repeated in the batch is first
    // inserted by its first occurrence and the later ones are its duplicates, as in SQLite.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|a, b| batch[*a].event.event_id.cmp(&batch[*b].event.event_id));
    let mut firsts: Vec<usize> = order.clone();
    firsts.dedup_by(|a, b| batch[*a].event.event_id == batch[*b].event.event_id);

    // What is stored for each id once the batch has gone in: inserted by this batch (with its
    // first occurrence's hash) or stored before it.
    let mut stored: HashMap<String, Stored> = HashMap::with_capacity(firsts.len());
    let mut pending = firsts;
    while !pending.is_empty() {
        let inserted = insert_events(tx, &batch, &pending).await?;
        let others: Vec<&str> =
            pending.iter().map(|i| batch[*i].event.event_id.as_str()).filter(|id| !inserted.contains(*id)).collect();
        for id in inserted {
            stored.insert(id, Stored::Inserted);
        }
        if others.is_empty() {
            break;
        }
        // Stored already (by a transaction that has committed since: the insert waited for it).
        // A fresh statement sees them, unless one was pruned meanwhile: that one is tried again.
        let hashes: Vec<(String, String)> =
            sqlx::query_as("SELECT event_id, content_hash FROM events WHERE event_id = ANY($1)")
                .bind(&others)
                .fetch_all(&mut *tx)
                .await?;
        for (id, hash) in hashes {
            stored.insert(id, Stored::Before(hash));
        }
        pending.retain(|i| !stored.contains_key(batch[*i].event.event_id.as_str()));
    }

    let mut results: Vec<Option<IngestResult>> = vec![None; batch.len()];
    let mut conflicts = Vec::new();
    let mut deliveries = Vec::new();
    let mut first_hash: HashMap<&str, &str> = HashMap::new();
    for &index in &order {
        let p = &batch[index];
        let event_id = p.event.event_id.as_str();
        let status = match stored.get(event_id) {
            Some(Stored::Inserted) if !first_hash.contains_key(event_id) => {
                first_hash.insert(event_id, p.hash);
                None
            }
            Some(Stored::Inserted) => Some(first_hash.get(event_id).copied().unwrap_or_default()),
            Some(Stored::Before(hash)) => Some(hash.as_str()),
            None => return Err(StoreError::Corrupt(format!("event '{event_id}' was neither stored nor inserted"))),
        };
        results[index] = Some(match status {
            None => IngestResult {
                event_id: event_id.to_owned(),
                status: IngestStatus::Accepted,
                deliveries: p
                    .planned
                    .iter()
                    .map(|d| PlannedDelivery { destination: d.destination.clone(), state: d.state, reason: d.reason })
                    .collect(),
            },
            Some(hash) if hash == p.hash => {
                IngestResult { event_id: event_id.to_owned(), status: IngestStatus::Duplicate, deliveries: Vec::new() }
            }
            Some(_) => {
                conflicts.push(index);
                IngestResult { event_id: event_id.to_owned(), status: IngestStatus::Conflict, deliveries: Vec::new() }
            }
        });
        if status.is_none() {
            deliveries.push(index);
        }
    }
    insert_conflicts(tx, &batch, &conflicts).await?;
    // Delivery ids follow the batch, as in SQLite, though events were inserted in event_id order.
    deliveries.sort_unstable();
    let planned: Vec<NewDelivery> = deliveries
        .into_iter()
        .flat_map(|index| {
            let p = &batch[index];
            let (event_id, at) = (p.event.event_id.as_str(), to_us(p.event.received_at));
            p.planned.iter().map(move |planned| NewDelivery { event_id, at, planned })
        })
        .collect();
    insert_deliveries(tx, planned).await?;
    Ok(results.into_iter().flatten().collect())
}

/// What the ledger holds for an event id after the batch's insert.
enum Stored {
    /// This batch inserted it (its first occurrence).
    Inserted,
    /// It was stored before, with this content hash.
    Before(String),
}

/// An event of the batch after the identity join: `body` is what the source stated (kept for a
/// conflict), `stored_body` what goes in the ledger.
struct Joined<'a> {
    event: Cow<'a, Event>,
    hash: &'a str,
    planned: Cow<'a, [Planned]>,
    body: &'a str,
    stored_body: Option<String>,
}

/// Joins every event of the batch with its bridge entries, read in one statement (and a second
/// one only for users that a subject's entry names): first the subject's entry, then the entry
/// of the user the event names, if it is not itself about that user. An event the join added to
/// is planned again.
async fn join_all<'a>(
    tx: &mut PgConnection,
    prepared: &'a [EventToStore],
    planner: &Planner,
) -> Result<Vec<Joined<'a>>, StoreError> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for p in prepared {
        keys.push((p.event.subject.kind.clone(), p.event.subject.id.clone()));
        if let Some(user) = other_user(&p.event) {
            keys.push(("user".to_owned(), user));
        }
    }
    let mut bridges = read_bridges(tx, keys).await?;
    let mut batch = Vec::with_capacity(prepared.len());
    let mut later: Vec<(String, String)> = Vec::new();
    for EventToStore { event, hash, planned, body } in prepared {
        let mut event = Cow::Borrowed(event);
        if let Some((identity, consent)) = bridges.get(&(event.subject.kind.clone(), event.subject.id.clone())) {
            join(event.to_mut(), identity, consent);
        }
        if let Some(user) = other_user(&event) {
            let key = ("user".to_owned(), user);
            if !bridges.contains_key(&key) {
                later.push(key);
            }
        }
        batch.push(Joined { event, hash, planned: Cow::Borrowed(planned), body, stored_body: None });
    }
    // Users named only by a subject's entry: their entries, in a second read.
    bridges.extend(read_bridges(tx, later).await?);
    for j in &mut batch {
        if let Some(user) = other_user(&j.event) {
            if let Some((identity, consent)) = bridges.get(&("user".to_owned(), user)) {
                join(j.event.to_mut(), identity, consent);
            }
        }
        if !j.event.joined.is_empty() {
            j.planned = Cow::Owned(planner.plan(&j.event, j.event.received_at));
            j.stored_body = Some(serde_json::to_string(&j.event)?);
        }
    }
    Ok(batch)
}

/// The user an event names, if it is not itself about that user.
fn other_user(event: &Event) -> Option<String> {
    event.identity.user_id.clone().filter(|u| event.subject.kind != "user" || event.subject.id != *u)
}

type Bridges = HashMap<(String, String), (Identity, Consent)>;

/// The bridge entries of these subjects (those that have one), in one statement.
async fn read_bridges(tx: &mut PgConnection, mut keys: Vec<(String, String)>) -> Result<Bridges, StoreError> {
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (kinds, ids): (Vec<String>, Vec<String>) = keys.into_iter().unzip();
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT i.subject_type, i.subject_id, i.identity, i.consent FROM identities i \
         JOIN UNNEST($1::text[], $2::text[]) AS k (subject_type, subject_id) \
         ON i.subject_type = k.subject_type AND i.subject_id = k.subject_id",
    )
    .bind(kinds)
    .bind(ids)
    .fetch_all(tx)
    .await?;
    rows.into_iter()
        .map(|(kind, id, i, c)| Ok(((kind, id), (serde_json::from_str(&i)?, serde_json::from_str(&c)?))))
        .collect()
}

/// Inserts these events of the batch (each id once, in event_id order) in one statement; the ids
/// it inserted (the others are stored already).
async fn insert_events(
    tx: &mut PgConnection,
    batch: &[Joined<'_>],
    which: &[usize],
) -> Result<HashSet<String>, StoreError> {
    let n = which.len();
    let (mut event_id, mut kind, mut source) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut subject_type, mut subject_id) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut occurred_at, mut received_at) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut hash, mut routed, mut body) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for j in which.iter().map(|i| &batch[*i]) {
        event_id.push(j.event.event_id.as_str());
        kind.push(j.event.kind.as_str());
        source.push(j.event.source.as_str());
        subject_type.push(j.event.subject.kind.as_str());
        subject_id.push(j.event.subject.id.as_str());
        occurred_at.push(to_us(j.event.occurred_at));
        received_at.push(to_us(j.event.received_at));
        hash.push(j.hash);
        routed.push(!j.planned.is_empty());
        body.push(j.stored_body.as_deref().unwrap_or(j.body));
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO events (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, \
         content_hash, routed, body) \
         SELECT event_id, kind, source, subject_type, subject_id, occurred_at, received_at, content_hash, routed, body \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], \
         $8::text[], $9::bool[], $10::text[]) WITH ORDINALITY \
         AS e (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, content_hash, routed, \
         body, n) ORDER BY n \
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
    )
    .bind(event_id)
    .bind(kind)
    .bind(source)
    .bind(subject_type)
    .bind(subject_id)
    .bind(occurred_at)
    .bind(received_at)
    .bind(hash)
    .bind(routed)
    .bind(body)
    .fetch_all(tx)
    .await?;
    Ok(inserted.into_iter().collect())
}

/// Records the conflicting attempts: each as the source stated it (before any join), as SQLite
/// records it.
async fn insert_conflicts(tx: &mut PgConnection, batch: &[Joined<'_>], which: &[usize]) -> Result<(), StoreError> {
    if which.is_empty() {
        return Ok(());
    }
    let n = which.len();
    let (mut event_id, mut received_at) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut hash, mut body) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for j in which.iter().map(|i| &batch[*i]) {
        event_id.push(j.event.event_id.as_str());
        received_at.push(to_us(j.event.received_at));
        hash.push(j.hash);
        body.push(j.body);
    }
    sqlx::query(
        "INSERT INTO conflicts (event_id, received_at, content_hash, body) \
         SELECT event_id, received_at, content_hash, body \
         FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[]) WITH ORDINALITY \
         AS c (event_id, received_at, content_hash, body, n) ORDER BY n",
    )
    .bind(event_id)
    .bind(received_at)
    .bind(hash)
    .bind(body)
    .execute(tx)
    .await?;
    Ok(())
}

/// Inserts the batch's planned deliveries in one statement, in the order given.
async fn insert_deliveries(conn: &mut PgConnection, deliveries: Vec<NewDelivery<'_>>) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
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
        destination.push(p.destination.as_str());
        dest_event.push(p.route.event.as_str());
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

#[cfg(test)]
mod tests;
