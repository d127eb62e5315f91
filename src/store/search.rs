//! Finding events by what a person has at hand (`Store::search`) and listing them with filters
//! (`Store::list_events`): the shared, pure half — which search keys a message files its
//! subjects under at intake, what a query is looked up as, and the views both stores return.
//!
//! A search key names a subject, not an event: every event of a matched subject is listed (the
//! order paid, its refunds, its chargeback). Personal values are keys only as the SHA-256 hashes
//! ingest stores anyway, under both platforms' normalisations; a raw email or phone in a query is
//! hashed the same way before it is looked up, and never kept.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::core::pii::{hash_email, hash_phone, Hashed, Sha256Hex};
use crate::core::{DeliveryState, Event, Identity, IdentityCapture, Subject};
use crate::store::Receipt;

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
        // Blank as the API's schema says (`\S`, as JSON Schema validators read it): Unicode white
        // space and the four information separators U+001C–U+001F.
        let q = query.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c));
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

/// The search keys a message files under its subjects: each event's personal fields (hashed),
/// click ids, user id and the ids its source gave (refund, dispute, payment intent), each
/// capture's, and the message's own receipt id under its events' subjects.
pub fn intake_keys<'a>(
    captures: &[IdentityCapture],
    events: impl Iterator<Item = &'a Event>,
    mapped: Option<&Receipt>,
) -> Vec<(String, Subject)> {
    let mut out: Vec<(String, Subject)> = Vec::new();
    let mut add = |key: String, subject: &Subject| {
        if !out.iter().any(|(k, s)| *k == key && s == subject) {
            out.push((key, subject.clone()));
        }
    };
    for c in captures {
        for key in identity_keys(&c.identity) {
            add(key, &c.subject);
        }
    }
    for e in events {
        for key in identity_keys(&e.identity) {
            add(key, &e.subject);
        }
        for key in source_ids(e) {
            add(format!("id:{key}"), &e.subject);
        }
        if let Some(r) = mapped {
            add(format!("id:{}", r.receipt_id), &e.subject);
        }
    }
    out
}

fn identity_keys(id: &Identity) -> Vec<String> {
    let mut keys = Vec::new();
    for (prefix, field) in [("email", &id.email), ("phone", &id.phone)] {
        if let Some(h) = field {
            keys.push(format!("{prefix}:{}", h.google.as_str()));
            if h.meta != h.google {
                keys.push(format!("{prefix}:{}", h.meta.as_str()));
            }
        }
    }
    for click in [&id.gclid, &id.gbraid, &id.wbraid, &id.li_fat_id, &id.fbc].into_iter().flatten() {
        keys.push(format!("click:{click}"));
    }
    if let Some(fbclid) = id.fbc.as_deref().and_then(fbclid) {
        keys.push(format!("click:{fbclid}"));
    }
    if let Some(u) = &id.user_id {
        keys.push(format!("user_id:{u}"));
    }
    keys
}

/// The fbclid inside Meta's `_fbc` value `fb.{subdomain index}.{creation time}.{fbclid}`.
fn fbclid(fbc: &str) -> Option<&str> {
    let mut parts = fbc.splitn(4, '.');
    (parts.next() == Some("fb")).then_some(())?;
    parts.next()?;
    parts.next()?;
    parts.next().filter(|s| !s.is_empty())
}

/// The ids a source gave parts of the event: what follows `{type}:{id}:{kind}:` in a derived id
/// (Stripe refund `re_…` and dispute `dp_…`, Shopify refund id), and the Stripe payment intent
/// and customer it named.
fn source_ids(e: &Event) -> Vec<String> {
    let mut ids = Vec::new();
    let prefix = format!("{}:{}:{}:", e.subject.kind, e.subject.id, e.kind.as_str());
    if let Some(rest) = e.event_id.as_str().strip_prefix(&prefix).filter(|r| !r.is_empty()) {
        ids.push(rest.to_owned());
    }
    for attr in ["stripe_payment_intent", "stripe_customer"] {
        if let Some(Value::String(v)) = e.attributes.get(attr) {
            ids.push(v.clone());
        }
    }
    ids
}

/// The event ids a `mapped` receipt's detail names (`evt_1 accepted, evt_2 duplicate`).
pub fn receipt_event_ids(detail: &str) -> Vec<String> {
    detail
        .split(", ")
        .filter_map(|part| part.rsplit_once(' ').map(|(id, _)| id.to_owned()))
        .filter(|id| !id.is_empty())
        .collect()
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
mod tests {
    use super::*;

    #[test]
    fn an_email_query_is_hashed_under_both_schemes_and_not_kept() {
        let k = SearchKeys::parse("  Jane.Doe@GMAIL.com ").unwrap();
        let h = hash_email("Jane.Doe@GMAIL.com").unwrap();
        assert!(k.keys.contains(&format!("email:{}", h.google.as_str())));
        assert!(k.keys.contains(&format!("email:{}", h.meta.as_str())));
        assert!(k.keys.iter().filter(|k| k.starts_with("email:")).all(|k| !k.contains("jane")));
        assert!(SearchKeys::parse("   ").is_none());
    }

    #[test]
    fn a_phone_query_is_hashed_and_a_short_number_is_an_id() {
        let k = SearchKeys::parse("+49 151 2345 6789").unwrap();
        let h = hash_phone("+4915123456789").unwrap();
        assert!(k.keys.contains(&format!("phone:{}", h.google.as_str())));
        let k = SearchKeys::parse("1042").unwrap();
        assert!(!k.keys.iter().any(|k| k.starts_with("phone:")));
        assert_eq!(k.subject, None);
        let k = SearchKeys::parse("order:1042").unwrap();
        assert_eq!(k.subject, Some(Subject { kind: "order".into(), id: "1042".into() }));
        assert!(k.aliases.contains(&"stripe:order:1042".to_owned()));
    }

    #[test]
    fn fbclid_is_the_last_part_of_fbc() {
        assert_eq!(fbclid("fb.1.1554763741205.AbCdEf.gh"), Some("AbCdEf.gh"));
        assert_eq!(fbclid("fb.1.1554763741205"), None);
        assert_eq!(fbclid("xx.1.2.abc"), None);
    }

    #[test]
    fn receipt_details_name_their_event_ids() {
        assert_eq!(receipt_event_ids("a:1 accepted, b 2 duplicate"), ["a:1", "b 2"]);
        assert!(receipt_event_ids("").is_empty());
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        assert_eq!(parse_cursor(&cursor(42)), Some(42));
        for bad in ["42", "e", "e-1", "e0", "ex", "e+5", "e05", "e1234567890123456789", " e5"] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }
}
