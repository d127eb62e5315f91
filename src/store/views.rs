//! Stored rows → the views `Store` returns: pure decoding shared by both stores, so an event's
//! timeline reads the same whichever database holds it.

use chrono::{DateTime, Utc};

use crate::core::{DeliveryState, Event};
use crate::store::StoreError;
use crate::store::{
    AttemptView, ConflictView, DeliveryFilter, DeliveryView, EventView, ReceiptFilter, ReplayView, Routing,
    SettlementView,
};

/// The states that wait for a person (`DeliveryFilter::needs_person`, `rules::NEEDS_PERSON`), in SQL.
pub(super) const NEEDS_PERSON_SQL: &str = "('dead', 'rejected', 'in_doubt')";

/// A `deliveries` row as selected for a view, times already converted by the store.
pub(super) struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub destination: String,
    pub dest_event: String,
    pub state: String,
    pub reason: Option<String>,
    /// JSON array of strings, or none.
    pub messages: Option<String>,
    pub attempts: u32,
    pub strip_personal: bool,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl DeliveryRow {
    /// Parses state and messages; only a pending delivery shows when it is next due.
    pub fn into_view(self) -> Result<DeliveryView, StoreError> {
        let state: DeliveryState = self.state.parse().map_err(StoreError::Corrupt)?;
        let messages = match self.messages {
            Some(m) => serde_json::from_str(&m)?,
            None => Vec::new(),
        };
        Ok(DeliveryView {
            id: self.id,
            event_id: self.event_id,
            destination: self.destination,
            destination_event: self.dest_event,
            state,
            reason: self.reason,
            messages,
            attempts: self.attempts,
            personal_fields_stripped: self.strip_personal,
            stripped_fields: Vec::new(),
            next_attempt_at: if state == DeliveryState::Pending { self.next_attempt_at } else { None },
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// An `events` row (body, content hash, routed) with its history, read by the store.
pub(super) struct EventRows {
    pub body: String,
    pub content_hash: String,
    pub routed: bool,
    pub deliveries: Vec<DeliveryRow>,
    pub attempts: Vec<AttemptView>,
    pub replays: Vec<ReplayView>,
    pub settlements: Vec<SettlementView>,
    pub conflicts: Vec<ConflictView>,
}

impl EventRows {
    /// One event's timeline: a delivery that left personal fields out names the ones the event has.
    pub fn into_view(self) -> Result<EventView, StoreError> {
        let event: Event = serde_json::from_str(&self.body)?;
        let present = personal_fields(&event);
        let deliveries = self
            .deliveries
            .into_iter()
            .map(|row| {
                let mut d = row.into_view()?;
                if d.personal_fields_stripped {
                    d.stripped_fields = present.clone();
                }
                Ok(d)
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(EventView {
            event,
            routing: if self.routed { Routing::Routed } else { Routing::NotRouted },
            content_hash: self.content_hash,
            deliveries,
            attempts: self.attempts,
            replays: self.replays,
            settlements: self.settlements,
            conflicts: self.conflicts,
        })
    }
}

/// The fields in which a conflicting version of an event (its stored body) differs from the
/// stored event, by name: the source's statement only (`received_at` and what was joined from
/// the identity bridge are not compared). Unreadable bodies compare as nothing.
pub(super) fn differs(stored: &str, conflicting: &str) -> Vec<String> {
    use serde_json::Value;
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::from_str::<Value>(stored), serde_json::from_str::<Value>(conflicting))
    else {
        return Vec::new();
    };
    let joined: Vec<&str> = a
        .get("joined")
        .and_then(Value::as_array)
        .map(|j| j.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for key in ["kind", "occurred_at", "subject", "value", "currency", "items", "identity", "consent", "attributes"] {
        let (x, y) = (a.get(key), b.get(key));
        if x == y {
            continue;
        }
        // Tables are compared field by field, so the page names `identity.email`, not `identity`.
        let empty = serde_json::Map::new();
        let xo = x.and_then(Value::as_object);
        let yo = y.and_then(Value::as_object);
        if matches!(key, "identity" | "consent" | "attributes") && (xo.is_some() || yo.is_some()) {
            let (xo, yo) = (xo.unwrap_or(&empty), yo.unwrap_or(&empty));
            let names: std::collections::BTreeSet<&String> = xo.keys().chain(yo.keys()).collect();
            for name in names {
                let path = format!("{key}.{name}");
                if xo.get(name) != yo.get(name) && !joined.contains(&path.as_str()) {
                    out.push(path);
                }
            }
        } else {
            out.push(key.to_owned());
        }
    }
    out
}

/// The personal fields the event carries (hashed), by name.
fn personal_fields(e: &Event) -> Vec<&'static str> {
    e.identity.personal_fields()
}

/// A request's duration as shown: stored in microseconds, shown in milliseconds.
pub(super) fn duration_ms(us: Option<i64>) -> Option<f64> {
    us.map(|us| us as f64 / 1000.0)
}

/// How many deliveries one page holds: 100 unless asked, at most 1000.
pub(super) fn delivery_page(f: &DeliveryFilter) -> i64 {
    i64::from(f.limit.unwrap_or(100).min(1000))
}

/// How many receipts one list holds: 100 unless asked (0 = unasked), at most 10 000.
pub(super) fn receipt_page(f: &ReceiptFilter) -> i64 {
    (if f.limit == 0 { 100 } else { f.limit.min(10_000) }) as i64
}

/// A window page's rows → entries: events `(seq, body)` in order, deliveries `(event_id, state
/// text, delivery)` attached to their event. Shared by both stores.
pub(super) fn window_entries(
    events: Vec<(i64, String)>,
    deliveries: Vec<(String, String, crate::store::LedgerDelivery)>,
) -> Result<Vec<crate::store::LedgerEntry>, StoreError> {
    let mut entries = events
        .into_iter()
        .map(|(seq, body)| {
            Ok(crate::store::LedgerEntry { seq, event: serde_json::from_str(&body)?, deliveries: vec![] })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let at: std::collections::HashMap<String, usize> =
        entries.iter().enumerate().map(|(i, e)| (e.event.event_id.as_str().to_owned(), i)).collect();
    for (event_id, state, mut d) in deliveries {
        d.state = state.parse().map_err(StoreError::Corrupt)?;
        if let Some(&i) = at.get(&event_id) {
            entries[i].deliveries.push(d);
        }
    }
    Ok(entries)
}

/// One event's timeline as text (`surety events show`, `surety demo`).
impl std::fmt::Display for EventView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self;
        let e = &v.event;
        writeln!(f, "event     {}", e.event_id)?;
        writeln!(f, "kind      {} ({}), subject {}:{}", e.kind, v.routing, e.subject.kind, e.subject.id)?;
        writeln!(f, "occurred  {}   (event time, sent to platforms)", e.occurred_at.to_rfc3339())?;
        writeln!(f, "received  {}   (processing time)", e.received_at.to_rfc3339())?;
        if let (Some(value), Some(cur)) = (e.value, &e.currency) {
            writeln!(f, "value     {value} {}", cur.as_str())?;
        }
        if !e.joined.is_empty() {
            writeln!(f, "joined    {}", e.joined.join(", "))?;
        }
        for c in &v.conflicts {
            writeln!(
                f,
                "conflict  {} a different version arrived (content {})",
                c.received_at.to_rfc3339(),
                &c.content_hash[..12]
            )?;
        }
        for d in &v.deliveries {
            let reason = d.reason.as_deref().map(|r| format!(":{r}")).unwrap_or_default();
            writeln!(f, "\n→ {} as '{}'  [{}{}]  #{}", d.destination, d.destination_event, d.state, reason, d.id)?;
            for m in &d.messages {
                writeln!(f, "    ! {m}")?;
            }
            if let Some(next) = d.next_attempt_at {
                writeln!(f, "    next attempt {}", next.to_rfc3339())?;
            }
            for r in v.replays.iter().filter(|r| r.delivery_id == d.id) {
                writeln!(
                    f,
                    "    {} replayed from {}{}{}",
                    r.at.to_rfc3339(),
                    r.previous_state,
                    if r.forced { " (FORCED)" } else { "" },
                    r.by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default()
                )?;
            }
            for a in v.attempts.iter().filter(|a| a.delivery_id == d.id) {
                let status =
                    a.http_status.map(|s| s.to_string()).or_else(|| a.error.clone()).unwrap_or_else(|| "-".into());
                let took = a.duration_ms.map(|ms| format!(" in {ms:.1} ms")).unwrap_or_default();
                writeln!(
                    f,
                    "    {} attempt {} {}: {}{}{}{}",
                    a.at.to_rfc3339(),
                    a.attempt,
                    a.outcome,
                    status,
                    took,
                    a.detail.as_deref().map(|d| format!(" — {d}")).unwrap_or_default(),
                    if a.forced { " (forced)" } else { "" }
                )?;
            }
            for st in v.settlements.iter().filter(|st| st.delivery_id == d.id) {
                writeln!(
                    f,
                    "    {} settled as {} by {} (was {}{}){}",
                    st.at.to_rfc3339(),
                    st.settled_as,
                    st.by,
                    st.previous_state,
                    st.previous_reason.as_deref().map(|r| format!(":{r}")).unwrap_or_default(),
                    st.note.as_deref().map(|n| format!(" — {n}")).unwrap_or_default()
                )?;
            }
        }
        Ok(())
    }
}
