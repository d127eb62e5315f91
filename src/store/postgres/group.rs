//! Group commit for `Store::ingest` on PostgreSQL. Every commit waits for the server's WAL flush
//! (an fsync), so one transaction per request caps single-event ingest at a few flushes' worth
//! of requests. Calls arriving while earlier groups are committing are queued and go in together:
//! one transaction, one set of set-based statements (`ingest::ingest_in`) and one flush for all
//! of them, and each caller is answered with its own results only after that commit. A group
//! that fails before its commit is retried call by call, so one call's error is never another's.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::ingest::ingest_in;
use crate::core::plan::Planner;
use crate::store::prepare::EventToStore;
use crate::store::{IngestResult, StoreError};

/// Groups committing at once: while they wait for their flush, the next group gathers.
const IN_FLIGHT: usize = 4;
/// A group stops taking calls once it holds this many events (a call is never split).
const MAX_EVENTS: usize = 2_000;

type Answer = Result<Vec<IngestResult>, StoreError>;

/// One `ingest` call waiting for its group.
struct Call {
    prepared: Vec<EventToStore>,
    planner: Arc<Planner>,
    answer: oneshot::Sender<Answer>,
}

/// The queue of ingest calls, and the task that commits them in groups.
pub(super) struct Grouper {
    calls: mpsc::UnboundedSender<Call>,
}

impl Grouper {
    /// Starts the committing task on the current runtime; it ends when the grouper is dropped.
    pub(super) fn start(pool: PgPool) -> Self {
        let (calls, queue) = mpsc::unbounded_channel();
        tokio::spawn(commit_groups(pool, queue));
        Self { calls }
    }

    /// Stores the events with whatever other calls are waiting, answering after the commit.
    pub(super) async fn ingest(&self, pool: &PgPool, prepared: Vec<EventToStore>, planner: Arc<Planner>) -> Answer {
        let (answer, answered) = oneshot::channel();
        if let Err(mpsc::error::SendError(call)) = self.calls.send(Call { prepared, planner, answer }) {
            // The committing task is gone (its runtime shut down): commit this call alone.
            return alone(pool, &call.prepared, &call.planner).await;
        }
        answered.await.map_err(|_| StoreError::Task("the ingest group was dropped before its commit".into()))?
    }
}

async fn commit_groups(pool: PgPool, mut queue: mpsc::UnboundedReceiver<Call>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some(first) = queue.recv().await else { return };
        let mut events = first.prepared.len();
        let mut group = vec![first];
        while events < MAX_EVENTS {
            match queue.try_recv() {
                Ok(call) => {
                    events += call.prepared.len();
                    group.push(call);
                }
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            commit(&pool, group).await;
            drop(slot);
        });
    }
}

/// Commits a group: calls sharing a planner in one transaction; one that fails before its
/// commit is retried call by call.
async fn commit(pool: &PgPool, mut group: Vec<Call>) {
    while !group.is_empty() {
        let planner = group[0].planner.clone();
        let (same, rest): (Vec<Call>, Vec<Call>) = group.into_iter().partition(|c| Arc::ptr_eq(&c.planner, &planner));
        group = rest;
        if same.len() == 1 {
            for call in same {
                let answer = alone(pool, &call.prepared, &call.planner).await;
                let _ = call.answer.send(answer);
            }
            continue;
        }
        let sizes: Vec<usize> = same.iter().map(|c| c.prepared.len()).collect();
        let (mut prepared, mut answers) = (Vec::with_capacity(sizes.iter().sum()), Vec::with_capacity(same.len()));
        for call in same {
            prepared.extend(call.prepared);
            answers.push(call.answer);
        }
        match together(pool, &prepared, &planner).await {
            Ok(results) => {
                let mut results = results.into_iter();
                for (answer, size) in answers.into_iter().zip(sizes) {
                    let _ = answer.send(Ok(results.by_ref().take(size).collect()));
                }
            }
            Err(Failed::AtCommit(e)) => {
                // The commit itself failed: whether it took effect is unknown, so every caller
                // is told (a retry of theirs finds the events stored, or stores them).
                let e = e.to_string();
                for answer in answers {
                    let _ = answer.send(Err(StoreError::Unavailable(format!("commit failed: {e}"))));
                }
            }
            Err(Failed::Before) => {
                // Nothing was kept: each call on its own, so an error is its call's alone.
                let mut start = 0;
                for (answer, size) in answers.into_iter().zip(sizes) {
                    let own = &prepared[start..start + size];
                    start += size;
                    let _ = answer.send(alone(pool, own, &planner).await);
                }
            }
        }
    }
}

enum Failed {
    /// Before the commit: nothing was kept.
    Before,
    /// The commit failed: it may or may not have taken effect.
    AtCommit(sqlx::Error),
}

/// One transaction for the whole group.
async fn together(pool: &PgPool, prepared: &[EventToStore], planner: &Planner) -> Result<Vec<IngestResult>, Failed> {
    let mut tx = pool.begin().await.map_err(|_| Failed::Before)?;
    let results = ingest_in(&mut tx, prepared, planner).await.map_err(|_| Failed::Before)?;
    tx.commit().await.map_err(Failed::AtCommit)?;
    Ok(results)
}

/// One call in its own transaction.
async fn alone(pool: &PgPool, prepared: &[EventToStore], planner: &Planner) -> Answer {
    let mut tx = pool.begin().await?;
    let results = ingest_in(&mut tx, prepared, planner).await?;
    tx.commit().await?;
    Ok(results)
}

#[cfg(test)]
mod tests;
