//! Ingest writes: dedupe by `event_id`, join from the identity bridge, plan, commit.

use rusqlite::{params, Connection, OptionalExtension};

use super::to_us;
use crate::core::plan::{join, Planner};
use crate::core::{Consent, DeliveryState, Identity};
pub(super) use crate::store::prepare::{prepare, Prepared};
use crate::store::{IdentityCapture, IngestResult, IngestStatus, PlannedDelivery, StoreError};

pub(super) fn ingest(
    conn: &Connection,
    events: Vec<Prepared>,
    planner: &Planner,
) -> Result<Vec<IngestResult>, StoreError> {
    let mut results = Vec::with_capacity(events.len());
    for Prepared { mut event, hash, mut planned, mut body } in events {
        let existing: Option<String> = conn
            .prepare_cached("SELECT content_hash FROM events WHERE event_id = ?1")?
            .query_row([event.event_id.as_str()], |r| r.get(0))
            .optional()?;
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
            let due = (p.state == DeliveryState::Pending).then_some(now);
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
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT identity, consent FROM identities WHERE subject_type = ?1 AND subject_id = ?2")?
        .query_row([kind, id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    row.map(|(i, c)| Ok((serde_json::from_str(&i)?, serde_json::from_str(&c)?))).transpose()
}

/// Merges a capture into the subject's bridge entry (its stated fields replace older ones) and
/// keeps the capture itself as history.
pub(super) fn capture_identity(
    conn: &Connection,
    capture: &IdentityCapture,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), StoreError> {
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
    Ok(())
}
