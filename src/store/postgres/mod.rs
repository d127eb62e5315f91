//! The ledger on PostgreSQL, for several Surety processes sharing one database (`storage.url =
//! "postgres://…"`). Same tables and semantics as `store::sqlite`; what differs is concurrency:
//! every call is its own transaction on a pooled connection, PostgreSQL's row locks replace the
//! single writer thread, and claims use `FOR UPDATE SKIP LOCKED` so processes never take the same
//! delivery. Times are microseconds since the Unix epoch, as in SQLite.

mod bodies;
pub(crate) mod fill;
mod follow_up;
mod ingest;
mod intake;
mod lead;
mod over_time;
mod queries;
mod queue;
mod reconciles;
mod rollups;
mod search;
mod settle;
mod window;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::search::{EventFilter, EventPage, SearchKeys, SearchResult};
use super::{
    BatchRecord, Claimed, Counts, DeliveryFilter, DeliveryView, DueFollowUp, EventView, Intake, IntakeResult, Pruned,
    QueueStat, ReceiptFilter, ReceiptView, Recovered, ReplayReport, ReplaySelector, SettleOutcome, Settlement, Store,
    StoreError,
};
use super::{DayRollup, LedgerChanges, LedgerEntry, TimePage, WindowPage};
use crate::core::plan::Planner;
use crate::core::FollowUp;
use crate::core::{Event, Subject};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("src/store/postgres/migrations");

/// Connections per process: enough for ingest, every destination's worker and the readers.
const POOL_SIZE: u32 = 16;

pub struct PgStore {
    pool: PgPool,
    /// Tasks this process leads (`Store::lead`), each on a session of its own.
    leads: lead::Leads,
}

impl PgStore {
    /// Connects (`postgres://user@host:port/db`) and brings the schema up to date; several
    /// processes starting at once serialise on the migrator's advisory lock.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Open(format!("migrating the ledger failed: {e}")))?;
        Ok(Self { pool, leads: lead::Leads::default() })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Creates an empty database named `<prefix>_<random>` on the server `server_url` names (a URL
/// ending in an existing database to connect to) and returns the new database's URL. For tests
/// and `surety bench`, which each want a ledger of their own.
pub async fn create_database(server_url: &str, prefix: &str) -> Result<String, StoreError> {
    use sqlx::Connection;
    let (base, _) = server_url
        .rsplit_once('/')
        .ok_or_else(|| StoreError::Open(format!("{server_url}: a PostgreSQL URL ends in /DATABASE")))?;
    let name = format!("{prefix}_{:016x}", rand::random::<u64>());
    let mut conn = sqlx::PgConnection::connect(server_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await?;
    Ok(format!("{base}/{name}"))
}

pub(crate) fn to_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

#[async_trait]
impl Store for PgStore {
    async fn intake(&self, intake: Intake, planner: Arc<Planner>) -> Result<IntakeResult, StoreError> {
        intake::intake(&self.pool, intake, planner).await
    }

    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError> {
        queue::claim(&self.pool, destination, limit, lease, owner, now).await
    }

    async fn mark_sending(&self, ids: &[i64], owner: &str, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        queue::mark_sending(&self.pool, ids, owner, now).await
    }

    async fn release(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        queue::release(&self.pool, ids, now).await
    }

    async fn record(&self, recording: BatchRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        queue::record(&self.pool, recording, now).await
    }

    async fn recover(&self, planner: Arc<Planner>, all: bool, now: DateTime<Utc>) -> Result<Recovered, StoreError> {
        queue::recover(&self.pool, planner, all, now).await
    }

    async fn replay(
        &self,
        selector: ReplaySelector,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<ReplayReport, StoreError> {
        queue::replay(&self.pool, selector, force, now).await
    }

    async fn settle(&self, settlement: Settlement, now: DateTime<Utc>) -> Result<SettleOutcome, StoreError> {
        settle::settle(&self.pool, settlement, now).await
    }

    async fn event(&self, event_id: &str) -> Result<Option<EventView>, StoreError> {
        queries::event(&self.pool, event_id).await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> Result<Vec<DeliveryView>, StoreError> {
        queries::deliveries(&self.pool, filter).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        queries::counts(&self.pool).await
    }

    async fn queues(&self) -> Result<Vec<QueueStat>, StoreError> {
        queries::queues(&self.pool).await
    }

    async fn due_follow_ups(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueFollowUp>, StoreError> {
        follow_up::due(&self.pool, destination, now, limit).await
    }

    async fn record_follow_up(
        &self,
        request_id: i64,
        answer: FollowUp,
        again: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        follow_up::record(&self.pool, request_id, answer, again, now).await
    }

    async fn receipts(&self, filter: ReceiptFilter) -> Result<Vec<ReceiptView>, StoreError> {
        queries::receipts(&self.pool, filter).await
    }

    async fn prune(&self, before: DateTime<Utc>, batch: usize) -> Result<Pruned, StoreError> {
        queries::prune(&self.pool, before, batch).await
    }

    async fn resolve_alias(&self, alias: &str) -> Result<Option<Subject>, StoreError> {
        ingest::resolve_alias(&self.pool, alias).await
    }

    async fn subject_history(&self, subject: &Subject, destination: &str) -> Result<Vec<(Event, String)>, StoreError> {
        queries::subject_history(&self.pool, subject, destination).await
    }

    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        queries::next_due(&self.pool, destination).await
    }

    async fn window_page(&self, page: WindowPage) -> Result<Vec<LedgerEntry>, StoreError> {
        window::window_page(&self.pool, &page).await
    }

    async fn time_page(&self, page: TimePage) -> Result<Vec<LedgerEntry>, StoreError> {
        rollups::time_page(&self.pool, &page).await
    }

    async fn day_rollups(&self, from: NaiveDate, until: NaiveDate) -> Result<Vec<DayRollup>, StoreError> {
        rollups::day_rollups(&self.pool, from, until).await
    }

    async fn put_day_rollups(
        &self,
        rows: Vec<DayRollup>,
        stamp: (NaiveDate, NaiveDate, DateTime<Utc>, i64),
    ) -> Result<(), StoreError> {
        rollups::put_day_rollups(&self.pool, &rows, stamp).await
    }

    async fn changed_days(&self, after_seq: i64, since: DateTime<Utc>) -> Result<LedgerChanges, StoreError> {
        rollups::changed_days(&self.pool, after_seq, since).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn prune_request_bodies(&self, before: DateTime<Utc>, batch: usize) -> Result<u64, StoreError> {
        bodies::prune_request_bodies(&self.pool, before, batch).await
    }

    async fn lead(&self, task: &'static str) -> Result<bool, StoreError> {
        self.leads.lead(&self.pool, task).await
    }

    async fn search(&self, keys: SearchKeys) -> Result<SearchResult, StoreError> {
        search::search(&self.pool, &keys).await
    }

    async fn list_events(&self, filter: EventFilter) -> Result<EventPage, StoreError> {
        search::list_events(&self.pool, &filter).await
    }

    async fn deliveries_over_time(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<super::over_time::HourCounts>, StoreError> {
        over_time::deliveries_over_time(&self.pool, since).await
    }

    async fn record_reconcile(&self, record: super::reconciles::ReconcileRecord) -> Result<i64, StoreError> {
        reconciles::record(&self.pool, &record).await
    }

    async fn reconciles(&self, limit: usize) -> Result<Vec<super::reconciles::StoredReconcile>, StoreError> {
        reconciles::recent(&self.pool, limit).await
    }
}

#[cfg(test)]
pub(crate) mod testdb;
