//! The ledger: the only module that runs SQL. One trait, one implementation per database, each
//! with its own migrations (SQLite now; PostgreSQL joins behind the same trait).

mod error;
pub mod fill;
mod identity_wait;
mod intake;
mod open;
mod operator;
pub mod over_time;
pub mod postgres;
mod prepare;
mod read;
pub mod reconciles;
mod records;
mod rollups;
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
use chrono::{DateTime, NaiveDate, Utc};

pub use self::error::StoreError;
pub use self::intake::{Intake, IntakeResult};
pub use self::open::{open, open_existing, open_sqlite};
pub use self::operator::{
    ReplayRefusal, ReplayReport, ReplaySelector, SettleOutcome, SettledAs, Settlement, SettlementView,
    MAX_SETTLEMENT_NOTE,
};
pub use self::read::{
    AttemptView, ConflictView, Counts, DeliveryFilter, DeliveryView, EventView, LedgerDelivery, LedgerEntry,
    ReceiptFilter, ReceiptView, ReplayView, Routing, WindowPage,
};
pub use self::records::{
    BatchRecord, DeliveryUpdate, DueFollowUp, IngestResult, IngestStatus, PlannedDelivery, Pruned, Receipt,
    ReceiptStatus, Recovered,
};
pub use self::rollups::{
    day_number, day_of_number, ChangedDay, DayRollup, LedgerChanges, TimeColumn, TimePage, DAY_US,
};
use crate::core::plan::Planner;
use crate::core::{Claimed, Event, FollowUp, Subject};
pub use crate::core::{IdentityCapture, QueueStat};

/// The ledger. Every write is committed before the call returns.
#[async_trait]
pub trait Store: Send + Sync {
    /// Commits one received message whole, in one transaction: its identity captures first and in
    /// order (each merged into its subject's bridge entry, re-planning the deliveries awaiting
    /// it), its aliases (the first one recorded stays), its events (deduplicated by `event_id`,
    /// joined with the captures just made, and planned) and its receipts. On error nothing of it
    /// is kept.
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
    /// Marks claimed deliveries as leaving now; a crash from here on means "in doubt". Only those
    /// still claimed by `owner` are marked, and only the ids returned may be sent: a delivery whose
    /// lease ran out while its batch waited was taken back and may be claimed again (by this
    /// process or another), and only the claim that marks it first sends it.
    async fn mark_sending(&self, ids: &[i64], owner: &str, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError>;
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
    /// Keeps a reconcile report, and deletes all but the newest [`reconciles::KEPT`] in the same
    /// transaction. Returns its id.
    async fn record_reconcile(&self, record: reconciles::ReconcileRecord) -> Result<i64, StoreError>;
    /// The newest `limit` kept reconcile reports, newest first (`limit` 1: the latest).
    async fn reconciles(&self, limit: usize) -> Result<Vec<reconciles::StoredReconcile>, StoreError>;
    /// One page of events by event or received time, each with its deliveries (`TimePage`): a
    /// range scan of that time's index, bounded by the range.
    async fn time_page(&self, page: TimePage) -> Result<Vec<LedgerEntry>, StoreError>;
    /// The cached day rollups of the days in `[from, until)`, in day order.
    async fn day_rollups(&self, from: NaiveDate, until: NaiveDate) -> Result<Vec<DayRollup>, StoreError>;
    /// Writes (replaces) day rollups, stamps every other cached day of `[from, until)` as found
    /// unchanged at `computed_at` / `through_seq`, and drops the days before `from` (beyond the
    /// horizon: reports read those live); one transaction.
    async fn put_day_rollups(
        &self,
        rows: Vec<DayRollup>,
        stamp: (NaiveDate, NaiveDate, DateTime<Utc>, i64),
    ) -> Result<(), StoreError>;
    /// The ledger's highest seq, and the event days in which something a rollup counts changed:
    /// events with `seq > after_seq`, or received, rewritten by the identity bridge, ended,
    /// skipped or replayed at or after `since`. Range scans over narrow indexes, bounded by what
    /// changed, not by the ledger's size (ADR 0008).
    async fn changed_days(&self, after_seq: i64, since: DateTime<Utc>) -> Result<LedgerChanges, StoreError>;
}
