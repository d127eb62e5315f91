//! Finding events by what a person has at hand (`Store::search`) and listing them with filters
//! (`Store::list_events`): the shared, pure half — which search keys a message files its
//! subjects under at intake, what a query is looked up as, and the views both stores return.
//!
//! A search key names a subject, not an event: every event of a matched subject is listed (the
//! order paid, its refunds, its chargeback). Personal values are keys only as the SHA-256 hashes
//! ingest stores anyway, under both platforms' normalisations; a raw email or phone in a query is
//! hashed the same way before it is looked up, and never kept.

mod keys;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use self::keys::{intake_keys, receipt_event_ids};
use crate::core::pii::{hash_email, hash_phone, Hashed, Sha256Hex};
use crate::core::{DeliveryState, Event, Subject};

/// Most subjects one search lists events of.
pub const MAX_SUBJECTS: usize = 20;
/// Most events one search lists (per subject and in all).
pub const MAX_EVENTS: usize = 500;
/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 512;
/// Most events one page of `Store::list_events` holds.
pub const MAX_PAGE: usize = 500;
/// Most events one page of `Store::list_events` looks at: a filter that matches rarely returns a
/// short page with a cursor instead of walking the whole ledger in one request.
pub const MAX_SCAN: i64 = 20_000;

/// How a subject was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// The query is one of its events' id.
    EventId,
    /// The query is the subject (`order:1042`) or its id (`1042`).
    Subject,
    /// Another name a source used for it (`stripe:pi_…`).
    Alias,
    /// The id a source gave a message that became its events (Stripe `evt_…`, Shopify webhook id).
    Receipt,
    /// An id a source gave something of it: a refund (`re_…`), a dispute, a payment intent.
    SourceId,
    Email,
    Phone,
    /// gclid, gbraid, wbraid, fbclid (or the whole `_fbc`), li_fat_id.
    ClickId,
    /// The user its events named (`identity.user_id`), found through that user.
    UserId,
}

impl MatchedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EventId => "event_id",
            Self::Subject => "subject",
            Self::Alias => "alias",
            Self::Receipt => "receipt",
            Self::SourceId => "source_id",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::ClickId => "click_id",
            Self::UserId => "user_id",
        }
    }

    /// What a stored search key (`email:…`, `click:…`) says about how it matched.
    pub fn of_key(key: &str) -> Self {
        match key.split_once(':').map(|(p, _)| p) {
            Some("email") => Self::Email,
            Some("phone") => Self::Phone,
            Some("click") => Self::ClickId,
            Some("user_id") => Self::UserId,
            _ => Self::SourceId,
        }
    }
}

/// What one query is looked up as (built by [`SearchKeys::parse`]; the raw query is not kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchKeys {
    /// An event id, a subject id (any type), a receipt id: the query as given.
    pub text: String,
    /// `type:id` split at its first colon.
    pub subject: Option<Subject>,
    /// Alias names (`stripe:pi_…` is looked up for `pi_…` too).
    pub aliases: Vec<String>,
    /// Search keys filed at intake: `id:…`, `click:…`, `email:<sha256>`, `phone:<sha256>`.
    pub keys: Vec<String>,
}

impl SearchKeys {
    /// Reads a query: an email or phone is hashed as ingest hashes it (both schemes), anything
    /// else is looked up as it is. `None` for an empty query.
    pub fn parse(query: &str) -> Option<Self> {
        // Blank as the API's schema spells it out (an explicit class, since JSON Schema
        // validators and generators disagree on what `\S` excludes): Unicode White_Space, the
        // four information separators U+001C–U+001F, and U+FEFF.
        let q =
            query.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c) || c == '\u{feff}');
        if q.is_empty() {
            return None;
        }
        let mut keys = vec![format!("id:{q}"), format!("click:{q}")];
        let mut hashed = |prefix: &str, h: Hashed| {
            for k in [format!("{prefix}:{}", h.google.as_str()), format!("{prefix}:{}", h.meta.as_str())] {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        };
        if let Some(h) = Sha256Hex::parse(q) {
            // A hash someone copied from a payload: either field may hold it.
            hashed("email", Hashed { google: h.clone(), meta: h.clone() });
            hashed("phone", Hashed { google: h.clone(), meta: h });
        } else if q.contains('@') {
            if let Ok(h) = hash_email(q) {
                hashed("email", h);
            }
        } else if let Ok(h) = hash_phone(q) {
            hashed("phone", h);
        }
        let subject = q.split_once(':').and_then(|(t, id)| Subject::parse(t.to_owned(), id.to_owned()).ok());
        let mut aliases = vec![q.to_owned()];
        if !q.starts_with("stripe:") {
            aliases.push(format!("stripe:{q}"));
        }
        Some(Self { text: q.to_owned(), subject, aliases, keys })
    }
}

/// A subject a search matched, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SearchMatch {
    pub by: MatchedBy,
    pub subject: Subject,
}

/// One delivery as a list shows it: where, what state, why, and what the platform said.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliverySummary {
    pub id: i64,
    pub destination: String,
    pub state: DeliveryState,
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    pub attempts: u32,
    /// When a pending delivery is next due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// One event as a list shows it, with its deliveries. No personal field is part of it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventSummary {
    pub event_id: String,
    pub kind: String,
    pub source: String,
    pub subject: Subject,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    pub deliveries: Vec<DeliverySummary>,
}

impl EventSummary {
    pub fn of(event: &Event, deliveries: Vec<DeliverySummary>) -> Self {
        Self {
            event_id: event.event_id.to_string(),
            kind: event.kind.to_string(),
            source: event.source.clone(),
            subject: event.subject.clone(),
            occurred_at: event.occurred_at,
            received_at: event.received_at,
            value: event.value,
            currency: event.currency.as_ref().map(|c| c.as_str().to_owned()),
            deliveries,
        }
    }
}

/// What `Store::search` found: the subjects and how, and every event of them in event-time order.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SearchResult {
    pub matches: Vec<SearchMatch>,
    pub events: Vec<EventSummary>,
    /// More subjects or events matched than are listed ([`MAX_SUBJECTS`], [`MAX_EVENTS`]).
    pub truncated: bool,
}

/// Which events `Store::list_events` lists, newest first. Delivery filters (`destination`,
/// `state`, `reason`) keep an event when one of its deliveries matches all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub kind: Option<String>,
    pub source: Option<String>,
    pub destination: Option<String>,
    pub state: Option<DeliveryState>,
    pub reason: Option<String>,
    /// Occurred at or after.
    pub since: Option<DateTime<Utc>>,
    /// Occurred before.
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
    /// Only events stored before this one (the previous page's `next_cursor`).
    pub before_seq: Option<i64>,
}

/// One page of events, and where the next one starts (none: this was the last).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EventPage {
    pub events: Vec<EventSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A page cursor: the storage order (`seq`) the next page starts below, as an opaque string.
pub fn cursor(seq: i64) -> String {
    format!("e{seq}")
}

/// Reads a cursor made by [`cursor`].
/// Exactly the form [`cursor`] writes (`^e[1-9][0-9]{0,17}$`, as the API's schema says).
pub fn parse_cursor(s: &str) -> Option<i64> {
    let n = s.strip_prefix('e')?;
    let digits = !n.is_empty() && n.len() <= 18 && !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| n.parse::<i64>().ok()).flatten()
}

/// A `deliveries` row as a list shows it (times already converted by the store).
pub(super) struct SummaryRow {
    pub id: i64,
    pub destination: String,
    pub state: String,
    pub reason: Option<String>,
    /// JSON array of strings, or none.
    pub messages: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl SummaryRow {
    pub fn into_summary(self) -> Result<DeliverySummary, crate::store::StoreError> {
        let state: DeliveryState = self.state.parse().map_err(crate::store::StoreError::Corrupt)?;
        let messages = match self.messages {
            Some(m) => serde_json::from_str(&m)?,
            None => Vec::new(),
        };
        Ok(DeliverySummary {
            id: self.id,
            destination: self.destination,
            state,
            reason: self.reason,
            messages,
            attempts: self.attempts,
            next_attempt_at: if state == DeliveryState::Pending { self.next_attempt_at } else { None },
            updated_at: self.updated_at,
        })
    }
}

/// The search's events in event-time order (storage order among equal times), at most
/// [`MAX_EVENTS`]; true when there were more.
pub(super) fn in_event_time_order(mut events: Vec<(i64, Event)>) -> (Vec<(i64, Event)>, bool) {
    events.sort_by(|(a_seq, a), (b_seq, b)| (a.occurred_at, a_seq).cmp(&(b.occurred_at, b_seq)));
    events.dedup_by_key(|(seq, _)| *seq);
    let truncated = events.len() > MAX_EVENTS;
    events.truncate(MAX_EVENTS);
    (events, truncated)
}

/// Adds `subject` found `by` unless it is known already; false once [`MAX_SUBJECTS`] are.
pub(super) fn add_match(matches: &mut Vec<SearchMatch>, by: MatchedBy, subject: Subject) -> bool {
    if matches.iter().any(|m| m.subject == subject) {
        return true;
    }
    if matches.len() >= MAX_SUBJECTS {
        return false;
    }
    matches.push(SearchMatch { by, subject });
    true
}

#[cfg(test)]
mod tests;
