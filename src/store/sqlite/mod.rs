//! The embedded store: SQLite in WAL mode. One writer thread commits every write, grouping the
//! writes that queue up while a commit is in progress into the next transaction (group commit),
//! so each caller still gets its answer only after its data is durable. Reads use a small pool of
//! read-only connections. See docs/adr/0002-sqlite-group-commit.md.

mod bodies;
pub(crate) mod fill;
mod follow_up;
mod ingest;
mod intake;
mod over_time;
#[cfg(test)]
mod plans;
mod queries;
mod queue;
mod reconciles;
mod rollups;
mod search;
mod settle;
mod window;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, Semaphore};

use self::writer::{writer_loop, Health, Job};
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

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_ledger.sql"),
    include_str!("migrations/0002_delivery_route.sql"),
    include_str!("migrations/0003_follow_ups.sql"),
    include_str!("migrations/0004_receipts.sql"),
    include_str!("migrations/0005_retention.sql"),
    include_str!("migrations/0006_settlements.sql"),
    include_str!("migrations/0007_request_bodies.sql"),
    include_str!("migrations/0008_search.sql"),
    include_str!("migrations/0009_replayed_by.sql"),
    include_str!("migrations/0010_over_time.sql"),
    include_str!("migrations/0011_reconcile_reports.sql"),
    include_str!("migrations/0012_day_rollups.sql"),
    include_str!("migrations/0013_needs_person.sql"),
    include_str!("migrations/0014_ledger_counts.sql"),
];

/// How durable a commit is (`storage.sqlite_synchronous`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synchronous {
    Full,
    Normal,
}

/// Least free space on the ledger's filesystem for it to count as ready: below this a commit may
/// fail for want of room (and a small probe write could still pass on space the WAL already has).
const READY_FREE_BYTES: u64 = 1 << 20;
const READERS: usize = 4;

pub struct SqliteStore {
    health: Arc<Health>,
    jobs: mpsc::UnboundedSender<Job>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database, and starts the writer thread.
    pub fn open(path: &Path, sync: Synchronous) -> Result<Self, StoreError> {
        let mut writer = Connection::open(path)?;
        configure(&writer, sync)?;
        migrate(&mut writer)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            readers.push(conn);
        }
        let (jobs, rx) = mpsc::unbounded_channel();
        let health = Arc::new(Health::default());
        let writer_health = health.clone();
        std::thread::Builder::new()
            .name("surety-sqlite-writer".into())
            .spawn(move || writer_loop(writer, rx, &writer_health))
            .map_err(|e| StoreError::Open(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            health,
            jobs,
            readers: Mutex::new(readers),
            reader_slots: Semaphore::new(READERS),
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on a read-only connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _slot = self.reader_slots.acquire().await.map_err(|_| StoreError::Closed)?;
        let conn = self.readers.lock().map_err(|_| StoreError::Closed)?.pop().ok_or(StoreError::Closed)?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (conn, r)
        })
        .await
        .map_err(|e| StoreError::Task(format!("reader task failed: {e}")))?;
        self.readers.lock().map_err(|_| StoreError::Closed)?.push(conn);
        result
    }
}

fn configure(conn: &Connection, sync: Synchronous) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open(format!("SQLite refused WAL mode (got {mode})")));
    }
    let sync = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; \
         PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 4000;"
    ))?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Open(format!(
            "the database is at schema version {version}, newer than this binary knows ({}); upgrade surety",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Hashes, plans and encodes events before they reach the writer, in parallel across requests
/// (the writer thread only runs SQL); a large batch on the blocking pool.
async fn prepare(events: Vec<Event>, planner: &Arc<Planner>) -> Result<Vec<ingest::EventToStore>, StoreError> {
    if events.len() > 16 {
        let planner = planner.clone();
        tokio::task::spawn_blocking(move || ingest::prepare(events, &planner))
            .await
            .map_err(|e| StoreError::Task(format!("preparing events failed: {e}")))?
    } else {
        ingest::prepare(events, planner)
    }
}

pub(crate) fn to_us(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn from_us(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

#[async_trait]
impl Store for SqliteStore {
    async fn intake(&self, intake: Intake, planner: Arc<Planner>) -> Result<IntakeResult, StoreError> {
        let Intake { at, captures, aliases, events, receipts, mapped } = intake;
        let events = prepare(events, &planner).await?;
        let parts = intake::Parts { at, captures, aliases, events, receipts, mapped };
        self.write(move |conn| intake::intake(conn, parts, &planner)).await
    }

    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        lease: Duration,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (destination, owner) = (destination.to_owned(), owner.to_owned());
        self.write(move |conn| queue::claim(conn, &destination, limit, lease, &owner, now)).await
    }

    async fn mark_sending(&self, ids: &[i64], owner: &str, now: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
        let (ids, owner) = (ids.to_vec(), owner.to_owned());
        self.write(move |conn| queue::mark_sending(conn, &ids, &owner, now)).await
    }

    async fn release(&self, ids: &[i64], now: DateTime<Utc>) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.write(move |conn| queue::release(conn, &ids, now)).await
    }

    async fn record(&self, recording: BatchRecord, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(move |conn| queue::record(conn, &recording, now)).await
    }

    async fn recover(&self, planner: Arc<Planner>, all: bool, now: DateTime<Utc>) -> Result<Recovered, StoreError> {
        self.write(move |conn| queue::recover(conn, &planner, all, now)).await
    }

    async fn replay(
        &self,
        selector: ReplaySelector,
        force: bool,
        now: DateTime<Utc>,
    ) -> Result<ReplayReport, StoreError> {
        self.write(move |conn| queue::replay(conn, &selector, force, now)).await
    }

    async fn settle(&self, settlement: Settlement, now: DateTime<Utc>) -> Result<SettleOutcome, StoreError> {
        self.write(move |conn| settle::settle(conn, &settlement, now)).await
    }

    async fn event(&self, event_id: &str) -> Result<Option<EventView>, StoreError> {
        let id = event_id.to_owned();
        self.read(move |conn| queries::event(conn, &id)).await
    }

    async fn deliveries(&self, filter: DeliveryFilter) -> Result<Vec<DeliveryView>, StoreError> {
        self.read(move |conn| queries::deliveries(conn, &filter)).await
    }

    async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(queries::counts).await
    }

    async fn queues(&self) -> Result<Vec<QueueStat>, StoreError> {
        self.read(queries::queues).await
    }

    async fn due_follow_ups(
        &self,
        destination: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueFollowUp>, StoreError> {
        let d = destination.to_owned();
        self.read(move |conn| follow_up::due(conn, &d, now, limit)).await
    }

    async fn record_follow_up(
        &self,
        request_id: i64,
        answer: FollowUp,
        again: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| follow_up::record(conn, request_id, &answer, again, now)).await
    }

    async fn receipts(&self, filter: ReceiptFilter) -> Result<Vec<ReceiptView>, StoreError> {
        self.read(move |conn| queries::receipts(conn, &filter)).await
    }

    async fn prune(&self, before: DateTime<Utc>, batch: usize) -> Result<Pruned, StoreError> {
        self.write(move |conn| queries::prune(conn, before, batch)).await
    }

    async fn resolve_alias(&self, alias: &str) -> Result<Option<Subject>, StoreError> {
        let alias = alias.to_owned();
        self.read(move |conn| queries::resolve_alias(conn, &alias)).await
    }

    async fn subject_history(&self, subject: &Subject, destination: &str) -> Result<Vec<(Event, String)>, StoreError> {
        let (s, d) = (subject.clone(), destination.to_owned());
        self.read(move |conn| queries::subject_history(conn, &s, &d)).await
    }

    async fn next_due(&self, destination: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        let d = destination.to_owned();
        self.read(move |conn| queries::next_due(conn, &d)).await
    }

    async fn window_page(&self, page: WindowPage) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(move |conn| window::window_page(conn, &page)).await
    }

    async fn time_page(&self, page: TimePage) -> Result<Vec<LedgerEntry>, StoreError> {
        self.read(move |conn| rollups::time_page(conn, &page)).await
    }

    async fn day_rollups(&self, from: NaiveDate, until: NaiveDate) -> Result<Vec<DayRollup>, StoreError> {
        self.read(move |conn| rollups::day_rollups(conn, from, until)).await
    }

    async fn put_day_rollups(
        &self,
        rows: Vec<DayRollup>,
        stamp: (NaiveDate, NaiveDate, DateTime<Utc>, i64),
    ) -> Result<(), StoreError> {
        self.write(move |conn| rollups::put_day_rollups(conn, &rows, stamp)).await
    }

    async fn changed_days(&self, after_seq: i64, since: DateTime<Utc>) -> Result<LedgerChanges, StoreError> {
        self.read(move |conn| rollups::changed_days(conn, after_seq, since)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    async fn prune_request_bodies(&self, before: DateTime<Utc>, batch: usize) -> Result<u64, StoreError> {
        self.write(move |conn| bodies::prune_request_bodies(conn, before, batch)).await
    }

    async fn search(&self, keys: SearchKeys) -> Result<SearchResult, StoreError> {
        self.read(move |conn| search::search(conn, &keys)).await
    }

    async fn list_events(&self, filter: EventFilter) -> Result<EventPage, StoreError> {
        self.read(move |conn| search::list_events(conn, &filter)).await
    }

    async fn deliveries_over_time(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<super::over_time::HourCounts>, StoreError> {
        self.read(move |conn| over_time::deliveries_over_time(conn, since)).await
    }

    async fn record_reconcile(&self, record: super::reconciles::ReconcileRecord) -> Result<i64, StoreError> {
        self.write(move |conn| reconciles::record(conn, &record)).await
    }

    async fn reconciles(&self, limit: usize) -> Result<Vec<super::reconciles::StoredReconcile>, StoreError> {
        self.read(move |conn| reconciles::recent(conn, limit)).await
    }

    /// Ready when the ledger answers, its filesystem has room, and — after a failed commit — a
    /// probe commit succeeds again (so readiness comes back by itself once space does).
    async fn ready(&self) -> Result<(), StoreError> {
        self.ping().await?;
        let folder = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let fs = rustix::fs::statvfs(folder)
            .map_err(|e| StoreError::Unavailable(format!("cannot read the ledger's free space: {e}")))?;
        let free = fs.f_bavail.saturating_mul(fs.f_frsize);
        if free < READY_FREE_BYTES {
            return Err(StoreError::Unavailable(format!(
                "the ledger's filesystem is full ({free} bytes free); commits would fail"
            )));
        }
        if self.health.failing().is_some() {
            // Rewrites the schema version with itself: a real commit that changes nothing.
            self.write(|conn| {
                let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                conn.pragma_update(None, "user_version", version)?;
                Ok(())
            })
            .await?;
        }
        match self.health.failing() {
            Some(why) => Err(StoreError::Unavailable(why)),
            None => Ok(()),
        }
    }
}
