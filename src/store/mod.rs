//! The ledger: the only module that runs SQL. One trait, one implementation per database, each
//! with its own migrations (SQLite now; PostgreSQL joins behind the same trait).

mod identity_wait;
mod intake;
mod open;
pub mod over_time;
pub mod postgres;
mod prepare;
mod rules;
pub mod search;
pub mod sqlite;
mod views;

#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod intake_tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

pub use self::intake::{Intake, IntakeResult};
pub use self::open::{open, open_existing, open_sqlite};
use crate::core::plan::Planner;
use crate::core::{AttemptOutcome, Claimed, DeliveryState, Event, FollowUp, RequestRecord, Subject};
pub use crate::core::{IdentityCapture, QueueStat};

/// Why the ledger failed a call. Callers match on the variant: `Unavailable` and `Closed` are
/// worth retrying later, `Corrupt` needs a person, `Open` stops the start.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] sqlx::Error),
    /// The ledger cannot be opened as configured: WAL refused, a schema newer than this binary, a
    /// failed migration, a URL without a database, no writer thread.
    #[error("the ledger cannot be opened: {0}")]
    Open(String),
    /// The ledger cannot commit now: no transaction could begin, the commit failed, the
    /// filesystem is full. Nothing of the call was kept.
    #[error("the ledger cannot commit now: {0}")]
    Unavailable(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("the store is shut down")]
    Closed,
    /// Work the store runs beside the database (hashing and planning a batch, a read) died.
    #[error("a store task failed: {0}")]
    Task(String),
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

/// What ingest made of one event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    Accepted,
    Duplicate,
    Conflict,
}

impl IngestStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Conflict => "conflict",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngestResult {
    pub event_id: String,
    pub status: IngestStatus,
    /// Deliveries planned for an accepted event (none = `not_routed`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<PlannedDelivery>,
}

/// What one `Store::prune` call deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pruned {
    pub events: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub requests: u64,
    pub receipts: u64,
    pub aliases: u64,
    pub identities: u64,
    pub identity_captures: u64,
    /// Request bodies dropped (their hash kept): `[ledger] keep_request_bodies_days`.
    pub request_bodies: u64,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn add(&mut self, o: &Pruned) {
        self.events += o.events;
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.requests += o.requests;
        self.receipts += o.receipts;
        self.aliases += o.aliases;
        self.identities += o.identities;
        self.identity_captures += o.identity_captures;
        self.request_bodies += o.request_bodies;
    }
}

/// What became of a thing a source handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// It became events (or a capture); the detail lists them.
    Mapped,
    /// Acknowledged, never routed (a type no kind is configured for).
    Ignored,
    /// It could not become an event; the detail says why.
    Invalid,
}

impl ReceiptStatus {
    /// The name stored in the ledger and shown by `GET /v1/receipts`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mapped => "mapped",
            Self::Ignored => "ignored",
            Self::Invalid => "invalid",
        }
    }
}

/// One thing a source handed over (a webhook, a message), as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub source: String,
    /// The source's own id for it: `evt_…`, `X-Shopify-Webhook-Id`, a Segment `messageId`.
    pub receipt_id: String,
    /// Stripe event type, Shopify topic, Segment message type or event name.
    pub topic: String,
    pub status: ReceiptStatus,
    /// The event ids it became, or why it was ignored or invalid.
    pub detail: Option<String>,
    pub at: DateTime<Utc>,
}

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

/// How a delivery was planned at ingest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedDelivery {
    pub destination: String,
    pub state: DeliveryState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// How one delivery ends up after an attempt (computed by the worker, written by the store).
#[derive(Clone, Debug, PartialEq)]
pub struct DeliveryUpdate {
    pub delivery_id: i64,
    pub state: DeliveryState,
    pub reason: Option<String>,
    pub messages: Vec<String>,
    /// For `Pending`: when to try again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Whether this counts as an attempt (a refusal before sending does not).
    pub attempted: bool,
    /// The attempt's outcome as recorded in the attempt log (`delivered`, `retry`, …).
    pub outcome: AttemptOutcome,
    pub detail: Option<String>,
    pub payload_sha256: Option<String>,
    /// Index into the recording's `requests`.
    pub request: Option<usize>,
    /// The attempt belongs to a forced replay.
    pub forced: bool,
}

/// One worker's results for a batch: the requests made and what became of each delivery.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchRecord {
    pub destination: String,
    /// The lease owner recording: a delivery another worker has claimed since (this one's lease
    /// ran out) keeps its new owner's state; the attempt is still logged.
    pub owner: String,
    pub requests: Vec<RequestRecord>,
    pub updates: Vec<DeliveryUpdate>,
    /// Requests to ask the platform about later: (index into `requests`, platform request id,
    /// when to ask).
    pub follow_ups: Vec<(usize, String, DateTime<Utc>)>,
}

/// A request whose processing result is due to be asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueFollowUp {
    pub request_id: i64,
    pub platform_request_id: String,
    /// When the request was sent: how long the platform has had to answer.
    pub sent_at: DateTime<Utc>,
}

/// Which deliveries a replay targets.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySelector {
    #[serde(default)]
    pub delivery_ids: Vec<i64>,
    pub event_id: Option<String>,
    pub destination: Option<String>,
    /// Only deliveries in this state (e.g. `dead`).
    pub state: Option<DeliveryState>,
    /// Say what would be replayed and refused, and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Who replays, for the record (`replays.replayed_by`): set by the caller from the
    /// credential (`admin token #k`, `console:<user>`, `cli`), never read from a request body.
    #[serde(skip)]
    pub by: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Nothing was changed: `replayed` lists what would have been.
    pub dry_run: bool,
    pub replayed: Vec<i64>,
    pub refused: Vec<ReplayRefusal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayRefusal {
    pub delivery_id: i64,
    pub state: DeliveryState,
    pub reason: String,
}

/// What a person found on the platform when settling a delivery (`surety dlq settle --as`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettledAs {
    /// It arrived: the delivery ends `delivered:settled_by_person`.
    Delivered,
    /// It did not, and is left so: `skipped:settled_by_person`.
    NotDelivered,
}

impl SettledAs {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::NotDelivered => "not_delivered",
        }
    }
}

impl std::fmt::Display for SettledAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SettledAs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "delivered" => Ok(Self::Delivered),
            "not_delivered" => Ok(Self::NotDelivered),
            _ => Err(format!("'{s}' is neither delivered nor not_delivered")),
        }
    }
}

/// The longest note a settlement keeps, in characters (longer ones are refused at the edge).
pub const MAX_SETTLEMENT_NOTE: usize = 2000;

/// A person's verdict on one delivery that needed one (`Store::settle`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub delivery_id: i64,
    pub settled_as: SettledAs,
    /// Who: an admin token's label (`admin token #1`) or `cli:<OS user>`. Never a secret.
    pub by: String,
    pub note: Option<String>,
}

/// One settlement as recorded, on the event's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SettlementView {
    pub delivery_id: i64,
    pub at: DateTime<Utc>,
    pub settled_as: SettledAs,
    pub by: String,
    pub note: Option<String>,
    pub previous_state: String,
    pub previous_reason: Option<String>,
}

/// What `Store::settle` made of a settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettleOutcome {
    /// Ended now in `state` with reason `settled_by_person`, and recorded.
    Settled {
        destination: String,
        state: DeliveryState,
        settlement: SettlementView,
    },
    NotFound,
    /// Not a delivery a person settles (only dead, rejected and in_doubt ones are): unchanged.
    Refused {
        state: DeliveryState,
        reason: Option<String>,
        why: &'static str,
    },
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

/// What crash recovery did at start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Claimed but never sent: back to pending.
    pub released: u64,
    /// Maybe sent; the platform dedupes on our id: re-sent.
    pub resent: u64,
    /// Maybe sent; no dedupe: `in_doubt` for a person to settle.
    pub in_doubt: u64,
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

/// The ledger. Every write is committed before the call returns.
#[async_trait]
pub trait Store: Send + Sync {
    /// Commits one received message whole, in one transaction: its identity captures (each as
    /// `capture_identity` does, in order), its aliases, its events (as `ingest` does, joined with
    /// the captures just made) and its receipts. On error nothing of it is kept.
    async fn intake(&self, intake: Intake, planner: Arc<Planner>) -> Result<IntakeResult, StoreError>;
    /// Leases up to `limit` due deliveries of one destination to `owner`.
    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError>;
    /// Marks claimed deliveries as leaving now; a crash from here on means "in doubt".
    async fn mark_sending(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Gives claimed (never sent) deliveries back, due at once.
    async fn release(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records requests and delivery outcomes in one transaction.
    async fn record(&self, recording: BatchRecord, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Takes back expired leases (all leases when `all`, at start): claimed → pending; sending →
    /// pending where the platform dedupes a resend, else `in_doubt`.
    async fn recover(&self, planner: Arc<Planner>, all: bool, now: DateTime<Utc>) -> Result<Recovered, StoreError>;
    /// Puts ended deliveries back to pending. A delivered one only with `force`, and logged.
    async fn replay(
        &self,
        selector: ReplaySelector,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<ReplayReport, StoreError>;
    /// Ends a dead, rejected or in_doubt delivery as a person found it on the platform, without
    /// sending anything, and records who, when and why. Anything else is refused, unchanged.
    async fn settle(&self, settlement: Settlement, now: DateTime<Utc>) -> Result<SettleOutcome, StoreError>;
    async fn event(&self, event_id: &str) -> Result<Option<EventView>, StoreError>;
    async fn deliveries(&self, filter: DeliveryFilter) -> Result<Vec<DeliveryView>, StoreError>;
    /// Whole-ledger totals (scans the ledger: for checks and reports, not for every scrape).
    async fn counts(&self) -> Result<Counts, StoreError>;
    /// Per destination: deliveries pending or in flight, and when the oldest was planned.
    /// Cheap at any ledger size (an index over live deliveries).
    async fn queues(&self) -> Result<Vec<QueueStat>, StoreError>;
    /// Requests of a destination whose processing result is due to be asked for.
    async fn due_follow_ups(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueFollowUp>, StoreError>;
    /// Records the platform's answer: ask again at `again`, or settle the request's delivered
    /// deliveries (accepted, partially accepted, rejected after processing, or — given up —
    /// still delivered with `processing_unknown`).
    async fn record_follow_up(
        &self,
        request_id: i64,
        answer: FollowUp,
        again: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// When the next pending delivery of a destination is due.
    async fn receipts(&self, filter: ReceiptFilter) -> Result<Vec<ReceiptView>, StoreError>;
    /// Deletes, in one transaction, up to `batch` ended events received before `before` with
    /// their history, and up to `batch` rows each of older requests, receipts, aliases and
    /// identity captures. Call again until it returns nothing (`Pruned::is_empty`).
    async fn prune(&self, before: DateTime<Utc>, batch: usize) -> Result<Pruned, StoreError>;
    async fn resolve_alias(&self, alias: &str) -> Result<Option<Subject>, StoreError>;
    /// Every event of `subject` (disputes and refunds that named the payment were stored under
    /// it through its aliases) that has a delivery to `destination`, with that delivery's
    /// destination event, in event-time order (ingest order among equal times): the ledger a
    /// restated conversion value is computed from.
    async fn subject_history(&self, subject: &Subject, destination: &str) -> Result<Vec<(Event, String)>, StoreError>;
    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// One page of the events that occurred in a window, in storage order, each with its
    /// deliveries. Call again with `after_seq` = the last entry's `seq` until a page comes back
    /// shorter than `limit`: one pass over the ledger, in bounded memory.
    async fn window_page(&self, page: WindowPage) -> Result<Vec<LedgerEntry>, StoreError>;
    /// Whether the database answers (readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Whether the ledger can commit now (readiness): it answers and, where the store can tell,
    /// has room to write and its last commit did not fail. `Err` says why not.
    async fn ready(&self) -> Result<(), StoreError> {
        self.ping().await
    }
    /// Drops the bodies of up to `batch` requests sent before `before`, keeping their hash
    /// (`[ledger] keep_request_bodies_days`). Returns how many; call again until 0.
    async fn prune_request_bodies(&self, before: DateTime<Utc>, batch: usize) -> Result<u64, StoreError>;
    /// Whether this process leads `task` among the processes sharing the ledger (one at a time:
    /// the alert rules are evaluated by the leader only). Asked again every round; the lead is
    /// kept while this process lives and its database session holds, and passes on when it does
    /// not. A SQLite ledger has one serving process: it always leads.
    async fn lead(&self, task: &'static str) -> Result<bool, StoreError> {
        let _ = task;
        Ok(true)
    }
    /// The subjects a query names — by an event's id, the subject or its id, an alias, a
    /// receipt id, a search key filed at intake (`search::intake_keys`) — and every event of
    /// them in event-time order with its deliveries.
    async fn search(&self, keys: search::SearchKeys) -> Result<search::SearchResult, StoreError>;
    /// One page of events, newest first, as `filter` says; `next_cursor` continues it.
    async fn list_events(&self, filter: search::EventFilter) -> Result<search::EventPage, StoreError>;
    /// Per destination and UTC hour from `since` on: deliveries that ended delivered or failed
    /// and attempts that ended in a retry (`over_time`). Two range scans over partial indexes:
    /// bounded by the window, not by the ledger's size.
    async fn deliveries_over_time(&self, since: DateTime<Utc>) -> Result<Vec<over_time::HourCounts>, StoreError>;
}
