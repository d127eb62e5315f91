//! Ingest writes: dedupe by `event_id`, join from the identity bridge, plan, commit.

use rusqlite::{params, Connection, OptionalExtension};

use super::to_us;
use crate::core::delivery::reason;
use crate::core::plan::{join, Planner};
use crate::core::{Consent, DeliveryState, Event, Identity, Route};
use crate::store::identity_wait::{replan, Waiting, REPLANNED};
pub(super) use crate::store::prepare::{prepare, EventToStore};
use crate::store::{IdentityCapture, IngestResult, IngestStatus, PlannedDelivery, StoreError};

/// The dedupe lookup (its plan is checked in `plans.rs`, as for the statements below).
pub(super) const DEDUPE: &str = "SELECT content_hash FROM events WHERE event_id = ?1";

/// The identity bridge lookup.
pub(super) const BRIDGE: &str = "SELECT identity, consent FROM identities WHERE subject_type = ?1 AND subject_id = ?2";

pub(super) fn ingest(
    conn: &Connection,
    events: Vec<EventToStore>,
    planner: &Planner,
) -> Result<Vec<IngestResult>, StoreError> {
    let mut results = Vec::with_capacity(events.len());
    for EventToStore { mut event, hash, mut planned, mut body } in events {
        let existing: Option<String> =
            conn.prepare_cached(DEDUPE)?.query_row([event.event_id.as_str()], |r| r.get(0)).optional()?;
        if let Some(stored) = existing {
            let status = if stored == hash {
                IngestStatus::Duplicate
            } else {
                conn.prepare_cached(
                    "INSERT INTO conflicts (event_id, received_at, content_hash, body) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![event.event_id.as_str(), to_us(event.received_at), hash, body])?;
                IngestStatus::Conflict
            };
            results.push(IngestResult { event_id: event.event_id.to_string(), status, deliveries: Vec::new() });
            continue;
        }

        if let Some((identity, consent)) = bridge(conn, &event.subject.kind, &event.subject.id)? {
            join(&mut event, &identity, &consent);
        }
        // Then what is known about the user (a Segment `identify`, a CRM contact), if the event
        // names one and is not itself about that user.
        if let Some(user) =
            event.identity.user_id.clone().filter(|u| event.subject.kind != "user" || event.subject.id != *u)
        {
            if let Some((identity, consent)) = bridge(conn, "user", &user)? {
                join(&mut event, &identity, &consent);
            }
        }
        if !event.joined.is_empty() {
            planned = planner.plan(&event, event.received_at);
            body = serde_json::to_string(&event)?;
        }
        conn.prepare_cached(
            "INSERT INTO events (event_id, kind, source, subject_type, subject_id, occurred_at, received_at, \
             content_hash, routed, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            event.event_id.as_str(),
            event.kind.as_str(),
            event.source,
            event.subject.kind,
            event.subject.id,
            to_us(event.occurred_at),
            to_us(event.received_at),
            hash,
            !planned.is_empty(),
            body
        ])?;
        let now = to_us(event.received_at);
        let mut insert = conn.prepare_cached(
            "INSERT INTO deliveries (event_id, destination, dest_event, browser_tracked, strip_personal, state, \
             reason, messages, next_attempt_at, created_at, updated_at, route) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
        )?;
        for p in &planned {
            let messages = (!p.messages.is_empty()).then(|| serde_json::to_string(&p.messages)).transpose()?;
            // Awaiting identity: due when its wait ends (the worker then ends it `no_identity`).
            let due = (p.state == DeliveryState::Pending).then(|| p.wait_until.map_or(now, to_us));
            insert.execute(params![
                event.event_id.as_str(),
                p.destination,
                p.route.event,
                p.route.browser_tracked,
                p.strip_personal,
                p.state.as_str(),
                p.reason,
                messages,
                due,
                now,
                serde_json::to_string(&p.route)?
            ])?;
        }
        results.push(IngestResult {
            event_id: event.event_id.to_string(),
            status: IngestStatus::Accepted,
            deliveries: planned
                .into_iter()
                .map(|p| PlannedDelivery { destination: p.destination, state: p.state, reason: p.reason })
                .collect(),
        });
    }
    Ok(results)
}

fn bridge(conn: &Connection, kind: &str, id: &str) -> Result<Option<(Identity, Consent)>, StoreError> {
    let row: Option<(String, String)> =
        conn.prepare_cached(BRIDGE)?.query_row([kind, id], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
    row.map(|(i, c)| Ok((serde_json::from_str(&i)?, serde_json::from_str(&c)?))).transpose()
}

/// Merges a capture into the subject's bridge entry (its stated fields replace older ones) and
/// keeps the capture itself as history.
pub(super) fn capture_identity(
    conn: &Connection,
    capture: &IdentityCapture,
    planner: &Planner,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<PlannedDelivery>, StoreError> {
    let subject = &capture.subject;
    let (identity, consent) =
        crate::store::rules::merge_capture(bridge(conn, &subject.kind, &subject.id)?.unwrap_or_default(), capture)?;
    let (identity_json, consent_json) = (serde_json::to_string(&identity)?, serde_json::to_string(&consent)?);
    conn.prepare_cached(
        "INSERT INTO identities (subject_type, subject_id, identity, consent, captured_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (subject_type, subject_id) DO UPDATE SET identity = ?3, consent = ?4, \
         captured_at = max(captured_at, ?5), updated_at = ?6",
    )?
    .execute(params![
        subject.kind,
        subject.id,
        identity_json,
        consent_json,
        to_us(capture.captured_at),
        to_us(now)
    ])?;
    conn.prepare_cached(
        "INSERT INTO identity_captures (subject_type, subject_id, captured_at, received_at, identity, consent) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        subject.kind,
        subject.id,
        to_us(capture.captured_at),
        to_us(now),
        serde_json::to_string(&capture.identity)?,
        serde_json::to_string(&capture.consent)?
    ])?;
    replan_waiting(conn, capture, (&identity, &consent), planner, now)
}

/// Re-plans the deliveries waiting for this subject's identity — the capture's subject and the
/// subject it is an alias of — with the merged bridge entry joined onto their events. Only waits
/// still running: one that has ended is the worker's to end as `no_identity`.
fn replan_waiting(
    conn: &Connection,
    capture: &IdentityCapture,
    (identity, consent): (&Identity, &Consent),
    planner: &Planner,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<PlannedDelivery>, StoreError> {
    let subject = &capture.subject;
    let mut subjects = vec![subject.clone()];
    if let Some(target) = super::queries::resolve_alias(conn, &format!("{}:{}", subject.kind, subject.id))? {
        if target != *subject {
            subjects.push(target);
        }
    }
    let mut out = Vec::new();
    for s in subjects {
        let rows: Vec<(String, String, i64, String, String, Option<String>)> = conn
            .prepare_cached(
                "SELECT e.event_id, e.body, d.id, d.destination, d.dest_event, d.route \
                 FROM events e JOIN deliveries d ON d.event_id = e.event_id \
                 WHERE e.subject_type = ?1 AND e.subject_id = ?2 AND d.state = 'pending' AND d.reason = ?3 \
                 AND d.next_attempt_at > ?4 ORDER BY e.seq, d.id",
            )?
            .query_map(params![s.kind, s.id, reason::AWAITING_IDENTITY, to_us(now)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut by_event: Vec<(String, String, Vec<Waiting>)> = Vec::new();
        for (event_id, body, delivery_id, destination, dest_event, route) in rows {
            let route = match route {
                Some(json) => serde_json::from_str(&json)?,
                None => Route { event: dest_event, ..Route::default() },
            };
            let waiting = Waiting { delivery_id, destination, route };
            match by_event.last_mut() {
                Some((id, _, list)) if *id == event_id => list.push(waiting),
                _ => by_event.push((event_id, body, vec![waiting])),
            }
        }
        for (event_id, body, waiting) in by_event {
            let mut event: Event = serde_json::from_str(&body)?;
            let joined_before = event.joined.len();
            join(&mut event, identity, consent);
            if let Some(user) =
                event.identity.user_id.clone().filter(|u| event.subject.kind != "user" || event.subject.id != *u)
            {
                if let Some((identity, consent)) = bridge(conn, "user", &user)? {
                    join(&mut event, &identity, &consent);
                }
            }
            if event.joined.len() > joined_before {
                // changed_at: a cached rollup of its day counts what it carried (ADR 0008).
                conn.prepare_cached("UPDATE events SET body = ?2, changed_at = ?3 WHERE event_id = ?1")?
                    .execute(params![event_id, serde_json::to_string(&event)?, to_us(now)])?;
            }
            for r in replan(&event, waiting, planner, now) {
                let p = &r.planned;
                let messages = (!p.messages.is_empty()).then(|| serde_json::to_string(&p.messages)).transpose()?;
                conn.prepare_cached(
                    "UPDATE deliveries SET state = ?2, reason = ?3, messages = ?4, strip_personal = ?5, \
                     next_attempt_at = ?6, updated_at = ?7 WHERE id = ?1",
                )?
                .execute(params![
                    r.delivery_id,
                    p.state.as_str(),
                    p.reason,
                    messages,
                    p.strip_personal,
                    r.due.map(to_us),
                    to_us(now)
                ])?;
                conn.prepare_cached(
                    "INSERT INTO attempts (delivery_id, attempt, at, outcome, detail) \
                     SELECT id, attempt_base + attempts, ?2, ?3, ?4 FROM deliveries WHERE id = ?1",
                )?
                .execute(params![r.delivery_id, to_us(now), REPLANNED, r.detail])?;
                out.push(r.view());
            }
        }
    }
    Ok(out)
}
