//! The reconcile reports kept in the ledger (`Store::record_reconcile`, `Store::reconciles`):
//! what `POST /v1/reconcile` answered and what `surety reconcile --record` found, so the
//! dashboard's reconcile page and the `reconcile_unexplained` alert rule see the latest one after
//! a restart and from every process on the ledger. The newest [`KEPT`] are kept: recording one
//! deletes the older ones in the same transaction, so the table never grows.
//!
//! The store keeps the report's body as JSON it does not read (`reconcile` owns its shape); the
//! columns beside it say when, by whom, over which window and how much was unexplained.

use chrono::{DateTime, Utc};

/// Reports kept in the ledger.
pub const KEPT: usize = 50;

/// One report to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReconcileRecord {
    pub recorded_at: DateTime<Utc>,
    /// Who ran it, never a secret: an admin token's label (`admin token #1`, `open API`) for
    /// `POST /v1/reconcile`, `cli:<OS user>` for `surety reconcile --record` (as
    /// `replays.replayed_by` and settlements spell them).
    pub recorded_by: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub unexplained: u64,
    pub explained: u64,
    /// The kept report as JSON.
    pub report: String,
}

/// A kept report, with its id (newer reports have larger ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredReconcile {
    pub id: i64,
    pub record: ReconcileRecord,
}

/// A count as a column stores it (an `i64`; no count comes near its end, and none wraps).
pub(crate) fn count_column(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A count read back (a negative one, which no writer stores, reads as 0).
pub(crate) fn count_value(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
