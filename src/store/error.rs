//! Why a ledger call failed.

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
