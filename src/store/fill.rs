//! Bench only: fills a fresh ledger with a long history of *ended* events written straight into
//! the tables (no HTTP, no planner), so `surety bench --history N` can measure ingest and claim
//! on a ledger that already holds N events. Every event leaves what a delivered one leaves: its
//! row (a stored body from a template the bench builds with the real parser), one `delivered`
//! delivery with its one attempt, a share of a request and its search keys. Written in large
//! transactions and streamed: memory does not grow with N. See docs/adr/0010-a-long-history.md.

use anyhow::Context;
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use crate::config::Config;

/// How many events one transaction (SQLite) or one statement (PostgreSQL) writes.
pub const CHUNK: u64 = 50_000;
/// Events whose attempts share one request row (a platform batch).
pub const PER_REQUEST: u64 = 500;
/// Events per customer: the same email and phone hash recur on this many events.
pub const PER_CUSTOMER: u64 = 3;
/// How far back the history reaches.
pub const DAYS: i64 = 90;

/// The placeholders a body template holds where each event's own values go.
pub const ID: &str = "@ID@";
pub const SUBJECT: &str = "@SUBJECT@";
pub const OCCURRED: &str = "@OCCURRED@";
pub const RECEIVED: &str = "@RECEIVED@";
pub const EMAIL: &str = "@EMAIL@";
pub const PHONE: &str = "@PHONE@";

/// What to write.
#[derive(Clone, Debug)]
pub struct HistorySpec {
    pub events: u64,
    /// The destination every event was delivered to, its event name and route (JSON, as stored).
    pub destination: String,
    pub dest_event: String,
    pub route: String,
    /// The event's kind and subject type, as in the template.
    pub kind: String,
    pub subject_type: String,
    /// The stored body of one event with the placeholders above (JSON, as intake stores it).
    pub body: String,
    /// The newest event is received just before this; the oldest [`DAYS`] before it.
    pub now: DateTime<Utc>,
}

/// One event's own values.
pub struct Row {
    pub n: u64,
    pub event_id: String,
    pub subject_id: String,
    pub occurred_us: i64,
    pub received_us: i64,
    pub email: String,
    pub phone: String,
}

impl HistorySpec {
    /// Event `n` of the history (0 is the oldest): ids and hashes ascend with `n`, so the writes
    /// append to each index rather than splitting pages at random (the point is the size the
    /// queries meet, and a fill fast enough for 10M).
    pub fn row(&self, n: u64) -> Row {
        let span = Duration::days(DAYS).num_microseconds().unwrap_or(i64::MAX);
        let step = span / self.events.max(1) as i64;
        let received_us = self.now.timestamp_micros() - span + step.saturating_mul(n as i64);
        let customer = n / PER_CUSTOMER;
        Row {
            n,
            event_id: format!("hist-{n:012}"),
            subject_id: format!("h{n:012}"),
            occurred_us: received_us - 90_000_000,
            received_us,
            email: format!("{customer:064x}"),
            phone: format!("{customer:062x}ff"),
        }
    }

    /// The body of one event: the template with its values in place.
    pub fn body(&self, r: &Row) -> String {
        let time = |us: i64| super::sqlite::from_us(us).to_rfc3339_opts(SecondsFormat::AutoSi, true);
        self.body
            .replace(ID, &r.event_id)
            .replace(SUBJECT, &r.subject_id)
            .replace(OCCURRED, &time(r.occurred_us))
            .replace(RECEIVED, &time(r.received_us))
            .replace(EMAIL, &r.email)
            .replace(PHONE, &r.phone)
    }
}

/// Fills the ledger `config` names (created and migrated if new) with `spec.events` ended events.
/// For `surety bench` and tests only: it writes rows no intake wrote.
pub async fn fill_history_for_bench(config: &Config, spec: &HistorySpec) -> anyhow::Result<()> {
    if config.is_postgres() {
        let store = super::postgres::PgStore::connect(&config.storage.url).await?;
        super::postgres::fill::fill_history(store.pool(), spec).await.context("filling the PostgreSQL ledger")
    } else {
        let path = config.sqlite_path().context("storage.url must be sqlite://PATH")?.to_owned();
        let spec = spec.clone();
        tokio::task::spawn_blocking(move || super::sqlite::fill::fill_history(std::path::Path::new(&path), &spec))
            .await
            .context("the fill task failed")?
            .context("filling the SQLite ledger")
    }
}
