//! What the ledger's reads take and return: filters, an event's timeline, deliveries, receipts,
//! totals and the pages of a window.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::operator::SettlementView;
use crate::core::{DeliveryState, Event, QueueStat};

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptFilter {
    pub source: Option<String>,
    pub status: Option<String>,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReceiptView {
    pub source: String,
    pub receipt_id: String,
    pub topic: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub times: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct DeliveryFilter {
    pub state: Option<DeliveryState>,
    pub destination: Option<String>,
    pub event_id: Option<String>,
    /// Only deliveries with an id above this (pagination).
    pub after: Option<i64>,
    pub limit: Option<u32>,
    /// The most recently changed first (newest dead letters), instead of oldest id first.
    #[serde(default)]
    pub recent: bool,
    /// Only deliveries that need a person: dead, rejected and in_doubt (the dead-letter view;
    /// `state` narrows it further).
    #[serde(default)]
    pub needs_person: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeliveryView {
    pub id: i64,
    pub event_id: String,
    pub destination: String,
    pub destination_event: String,
    pub state: DeliveryState,
    pub reason: Option<String>,
    pub messages: Vec<String>,
    pub attempts: u32,
    pub personal_fields_stripped: bool,
    /// Which personal fields of the event were left out for lack of consent (event timeline only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stripped_fields: Vec<&'static str>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttemptView {
    pub delivery_id: i64,
    pub attempt: u32,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub detail: Option<String>,
    pub payload_sha256: Option<String>,
    pub forced: bool,
    pub endpoint: Option<String>,
    pub http_status: Option<u16>,
    pub duration_ms: Option<f64>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    pub request_sha256: Option<String>,
    /// The request's body as sent, while `[ledger] keep_request_bodies_days` keeps it (then only
    /// `request_sha256` is left).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplayView {
    pub delivery_id: i64,
    pub at: DateTime<Utc>,
    pub previous_state: String,
    pub previous_reason: Option<String>,
    pub forced: bool,
    /// Who replayed it (`admin token #k`, `console:<user>`, `cli`); absent for replays recorded
    /// before the ledger kept it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConflictView {
    pub received_at: DateTime<Utc>,
    pub content_hash: String,
    /// The fields the conflicting version said otherwise (`value`, `identity.email`, …): names
    /// only, never values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differs: Vec<String>,
}

/// Whether an event's kind is routed to any destination (`routed`, `not_routed` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Routing {
    Routed,
    NotRouted,
}

impl Routing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Routed => "routed",
            Self::NotRouted => "not_routed",
        }
    }
}

impl std::fmt::Display for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event's whole timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventView {
    pub event: Event,
    pub routing: Routing,
    pub content_hash: String,
    pub deliveries: Vec<DeliveryView>,
    pub attempts: Vec<AttemptView>,
    pub replays: Vec<ReplayView>,
    /// A person's settlements of its deliveries: who, when, what they found, and why.
    pub settlements: Vec<SettlementView>,
    pub conflicts: Vec<ConflictView>,
}

/// The ledger's totals, for G6 checks, metrics and the demo.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Counts {
    pub events: u64,
    pub routed: u64,
    pub not_routed: u64,
    pub conflicts: u64,
    /// (destination, state, reason) → deliveries.
    pub deliveries: Vec<(String, DeliveryState, Option<String>, u64)>,
    pub queues: Vec<QueueStat>,
}

/// Which events `Store::window_page` reads: occurred in `[since, until)`, stored after `after_seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowPage {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The `seq` of the last event of the previous page (0 at first).
    pub after_seq: i64,
    pub limit: usize,
}

/// One event of a window with what became of it per destination (reconcile reads these).
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    /// The ledger's storage order: the next page starts after the last one's.
    pub seq: i64,
    pub event: Event,
    pub deliveries: Vec<LedgerDelivery>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LedgerDelivery {
    pub destination: String,
    /// The platform's name for it (GA4 event name, Google Ads conversion action, …).
    pub dest_event: String,
    pub state: DeliveryState,
    pub reason: Option<String>,
    /// When it was planned: how long a pending one has been waiting.
    pub created_at: DateTime<Utc>,
}
