//! The writer thread: every write is a job run in the open transaction; the jobs that queue up
//! while a commit is in progress share the next one (group commit), and each caller is answered
//! once its transaction's fate is known.

use std::sync::Mutex;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::SqliteStore;
use crate::store::StoreError;

/// Most writes folded into one transaction.
const MAX_GROUP: usize = 512;

pub(super) type Done = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A write: runs in the open transaction (or learns that none could be opened) and hands back
/// what to do once the commit's fate is known.
pub(super) type Job = Box<dyn FnOnce(Option<&Connection>) -> Done + Send>;

/// The last commit's fate, for readiness: the reason of a failed one until one succeeds again.
#[derive(Default)]
pub(super) struct Health(Mutex<Option<String>>);

impl Health {
    pub(super) fn set(&self, failure: Option<String>) {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = failure;
    }

    pub(super) fn failing(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// Whether an error says the disk, not the data, is at fault (the ledger cannot write).
fn is_io_failure(e: &StoreError) -> bool {
    use rusqlite::ErrorCode::{CannotOpen, DiskFull, ReadOnly, SystemIoFailure};
    matches!(e, StoreError::Database(rusqlite::Error::SqliteFailure(f, _))
        if matches!(f.code, DiskFull | SystemIoFailure | ReadOnly | CannotOpen))
}

impl SqliteStore {
    /// Runs `f` in the writer's current transaction; answers once that transaction committed.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let health = self.health.clone();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => in_savepoint(conn, f),
                None => Err(StoreError::Unavailable("could not begin a transaction".into())),
            };
            Box::new(move |commit: Result<(), String>| {
                let answer = match commit {
                    Ok(()) => result,
                    Err(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                };
                // A statement that hit the disk's limits fails before the commit does.
                if let Some(e) = answer.as_ref().err().filter(|e| is_io_failure(e)) {
                    health.set(Some(e.to_string()));
                }
                let _ = tx.send(answer);
            })
        });
        self.jobs.send(job).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }
}

fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT job")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE job")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
            Err(e)
        }
    }
}

/// The writer: take a job, then every job already queued (up to [`MAX_GROUP`]), run them in one
/// transaction, commit, then answer them all.
pub(super) fn writer_loop(conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>, health: &Health) {
    while let Some(first) = rx.blocking_recv() {
        let mut done: Vec<Done> = Vec::new();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            health.set(Some(format!("could not begin a transaction: {e}")));
            first(None)(Err(e.to_string()));
            continue;
        }
        done.push(first(Some(&conn)));
        while done.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => done.push(job(Some(&conn))),
                Err(_) => break,
            }
        }
        let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if commit.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        health.set(commit.as_ref().err().map(|e| format!("the last commit failed: {e}")));
        for d in done {
            d(commit.clone());
        }
    }
}
