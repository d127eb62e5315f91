//! What the cached day rollups of coverage and late arrivals need from the ledger
//! (`reconcile::rollup`, ADR 0008): the cache rows, the days something changed in since a
//! point, and a day's events read through the event-time index.

use chrono::{DateTime, NaiveDate, Utc};

/// Microseconds in a day.
pub const DAY_US: i64 = 86_400_000_000;

/// One cached day: its partial aggregates (`body`, JSON) and what they were computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRollup {
    pub day: NaiveDate,
    /// When the body was computed (or last found unchanged): a change stamped at or after this,
    /// less the clock margin, makes it stale.
    pub computed_at: DateTime<Utc>,
    /// The highest `events.seq` of the ledger when the body was computed.
    pub through_seq: i64,
    pub body: String,
}

/// A day in which something a rollup counts changed: the highest `seq` of its events among the
/// changes, and the latest change time (received, body rewritten, delivery ended or skipped,
/// replayed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedDay {
    pub day: NaiveDate,
    pub max_seq: i64,
    pub last_at: DateTime<Utc>,
}

/// The answer of `Store::changed_days`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerChanges {
    /// The ledger's highest `events.seq` (0 when empty), read first.
    pub max_seq: i64,
    pub days: Vec<ChangedDay>,
}

/// Which event time a [`TimePage`] ranges over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeColumn {
    Occurred,
    Received,
}

impl TimeColumn {
    pub(crate) fn column(self) -> &'static str {
        match self {
            TimeColumn::Occurred => "occurred_at",
            TimeColumn::Received => "received_at",
        }
    }
}

/// One page of the events whose `column` time is in `[since, until)`, in `(time, seq)` order
/// (an index range): continue after the last entry's `(time, seq)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimePage {
    pub column: TimeColumn,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub after: Option<(DateTime<Utc>, i64)>,
    pub limit: usize,
}

/// The day number (days since 1970-01-01) of a day.
pub fn day_number(day: NaiveDate) -> i64 {
    (day - DateTime::UNIX_EPOCH.date_naive()).num_days()
}

/// The day of a day number.
pub fn day_of_number(n: i64) -> NaiveDate {
    DateTime::UNIX_EPOCH.date_naive().checked_add_signed(chrono::Duration::days(n)).unwrap_or(NaiveDate::MAX)
}
