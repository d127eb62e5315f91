//! Delivery workers: one per destination, so a sick platform only slows itself (G9). Each claims
//! due deliveries with a lease, ends what must not be sent any more (`end_unsendable`: the time
//! window and the rest), batches, marks the batch as sending, sends, and records every outcome —
//! a failed attempt is always rescheduled or ended with a reason, never dropped.
//!
//! The chain, from a platform's answer to a ledger row: the adapter reads each answer
//! (`delivery::http::Exchange`) into an [`Outcome`] per delivery, handed back as a
//! [`SendReport`](crate::delivery::SendReport) of [`DeliveryOutcome`]s; [`settle`] turns each
//! into a [`DeliveryUpdate`]; the updates and the requests made go to `Store::record` as one
//! [`BatchRecord`] (`report`: the breaker told, the outcomes settled, the record written).

mod breaker;
mod follow_up;
mod lanes;
mod outcome;
mod report;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use self::breaker::{Breaker, BreakerPolicy, Gate};
pub use self::outcome::settle;
use self::report::{add_to_record, record, tell_breaker};
use crate::config::WorkerConfig;
use crate::core::delivery::reason;
use crate::core::plan::{outside_window, past_browser_dedupe, Planner};
use crate::core::retry::RetryPolicy;
use crate::core::{AttemptOutcome, Claimed, DeliveryState, Outcome};
use crate::delivery::{DeliveryOutcome, Destination};
use crate::store::{BatchRecord, DeliveryUpdate, Store, StoreError};
use crate::telemetry::{DestinationLabels, Metrics};

/// What a worker needs; shared with the rest of the process.
#[derive(Clone)]
pub struct WorkerContext {
    pub store: Arc<dyn Store>,
    pub planner: Arc<Planner>,
    pub metrics: Arc<Metrics>,
    pub retry: RetryPolicy,
    pub config: WorkerConfig,
    /// Identifies this process in leases.
    pub owner: String,
    pub breaker: BreakerPolicy,
    /// Keep each request's body in the ledger (`[ledger] keep_request_bodies_days` > 0).
    pub keep_request_bodies: bool,
}

/// One destination's lane: its adapter, its circuit breaker and its pace.
#[derive(Clone)]
pub struct Lane {
    pub destination: Arc<dyn Destination>,
    /// Least time between two requests (from `requests_per_minute`), if limited.
    pub pace: Option<Duration>,
}

type SharedBreaker = Arc<Mutex<Breaker>>;

fn lock(b: &SharedBreaker) -> std::sync::MutexGuard<'_, Breaker> {
    // The breaker's fields stay consistent under any panic: each method leaves them whole.
    b.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs one destination's worker until `cancel`; then finishes (and records) what is in flight.
#[tracing::instrument(name = "worker", skip_all, fields(destination = %lane.destination.name()))]
pub async fn run(ctx: WorkerContext, lane: Lane, wake: Arc<Notify>, cancel: CancellationToken) {
    let dest = lane.destination.clone();
    let name = dest.name().to_owned();
    let permits = Arc::new(Semaphore::new(dest.concurrency()));
    let breaker: SharedBreaker = Arc::new(Mutex::new(Breaker::new(ctx.breaker.clone())));
    let mut next_send = tokio::time::Instant::now();
    let mut in_flight = JoinSet::new();
    let lease = Duration::from_secs(ctx.config.lease_secs);
    tracing::info!("worker started");
    let asking = dest
        .follow_up_after()
        .map(|after| tokio::spawn(follow_up::run(ctx.clone(), dest.clone(), after, cancel.clone())));
    while !cancel.is_cancelled() {
        while in_flight.try_join_next().is_some() {}
        let gate = lock(&breaker).gate(std::time::Instant::now());
        ctx.metrics
            .circuit_open
            .get_or_create(&DestinationLabels { destination: name.clone() })
            .set(i64::from(gate != Gate::Closed));
        let limit = match gate {
            Gate::Closed => ctx.config.claim_batch,
            // One delivery probes the platform, once nothing else is in flight.
            Gate::Probe if in_flight.is_empty() => 1,
            Gate::Probe => {
                let _ = in_flight.join_next().await;
                continue;
            }
            Gate::Open(until) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(until.into()) => {}
                    _ = cancel.cancelled() => {}
                }
                continue;
            }
        };
        let claimed = match claim(&ctx, &name, limit, lease).await {
            Ok(c) => c,
            Err(_) => {
                idle(&ctx, &name, &wake, &cancel, true).await;
                continue;
            }
        };
        if claimed.is_empty() {
            idle(&ctx, &name, &wake, &cancel, false).await;
            continue;
        }
        let ready = end_unsendable(&ctx, &name, claimed, Utc::now(), Checks::All).await;
        let mut batches = dest.batches(ready).into_iter();
        while let Some(batch) = batches.next() {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                _ = cancel.cancelled() => {
                    // Never sent: give these and the rest back, due at once.
                    let ids: Vec<i64> = std::iter::once(batch).chain(batches.by_ref()).flatten().map(|c| c.delivery_id).collect();
                    if let Err(e) = ctx.store.release(&ids, Utc::now()).await {
                        tracing::warn!(error = %e, "release at shutdown failed; recovered at next start");
                    }
                    break;
                }
            };
            let Ok(permit) = permit else { break };
            if let Some(pace) = lane.pace {
                next_send = next_send.max(tokio::time::Instant::now());
                tokio::time::sleep_until(next_send).await;
                next_send += pace;
            }
            let (ctx, dest, breaker) = (ctx.clone(), dest.clone(), breaker.clone());
            in_flight.spawn(async move {
                send(&ctx, dest.as_ref(), batch, &breaker).await;
                drop(permit);
            });
        }
    }
    while in_flight.join_next().await.is_some() {}
    if let Some(asking) = asking {
        let _ = asking.await;
    }
    tracing::info!("worker stopped");
}

/// Claims up to `limit` due deliveries of destination `name` for this worker's lease.
#[tracing::instrument(name = "claim", skip_all,
    fields(destination = %name, limit = limit, claimed = tracing::field::Empty))]
async fn claim(ctx: &WorkerContext, name: &str, limit: usize, lease: Duration) -> Result<Vec<Claimed>, StoreError> {
    match ctx.store.claim(name, limit, lease, &ctx.owner, Utc::now()).await {
        Ok(claimed) => {
            tracing::Span::current().record("claimed", claimed.len());
            Ok(claimed)
        }
        Err(e) => {
            tracing::error!(error = %e, "claim failed");
            Err(e)
        }
    }
}

/// Sleeps until the next delivery is due, new work is signalled, or the poll interval passes.
async fn idle(ctx: &WorkerContext, name: &str, wake: &Notify, cancel: &CancellationToken, after_error: bool) {
    let poll = Duration::from_millis(ctx.config.poll_interval_ms);
    let wait = if after_error {
        poll
    } else {
        match ctx.store.next_due(name).await {
            Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(poll),
            _ => poll,
        }
    };
    if wait.is_zero() {
        tokio::task::yield_now().await;
        return;
    }
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = wake.notified() => {}
        _ = cancel.cancelled() => {}
    }
}

/// What [`end_unsendable`] looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Checks {
    /// Everything, on what was just claimed.
    All,
    /// Only what the passing of time changes (the windows and the age limit), on a batch about
    /// to leave: its identity and its payload's validity were checked when it was claimed.
    Time,
}

/// Ends, without sending, what must not be sent any more: events now outside the destination's
/// window (never re-timed), browser-tracked ones past the platform's dedupe window, what the
/// destination's sample holds back (a replay of `not_sampled` under an unchanged sample),
/// deliveries past their age limit, and payloads the platform's rules now refuse. This is the one place
/// the window is checked after planning: on what is claimed, and again (`Checks::Time`) on each
/// batch just before it is sent (a batch may wait for a permit or the pace), so no adapter
/// checks it.
async fn end_unsendable(
    ctx: &WorkerContext,
    name: &str,
    claimed: Vec<Claimed>,
    now: chrono::DateTime<Utc>,
    checks: Checks,
) -> Vec<Claimed> {
    let Some(rules) = ctx.planner.rules(name) else {
        return claimed;
    };
    let mut ready = Vec::with_capacity(claimed.len());
    let mut updates = Vec::new();
    for c in claimed {
        let end = |state: DeliveryState, outcome: AttemptOutcome, why: &'static str, messages| DeliveryUpdate {
            delivery_id: c.delivery_id,
            state,
            reason: Some(why.to_owned()),
            messages,
            next_attempt_at: None,
            attempted: false,
            outcome,
            detail: Some(format!("ended before sending: {why}")),
            payload_sha256: None,
            request: None,
            forced: c.forced,
        };
        // A replay released what the sample held back: the sample as configured now decides.
        let sampled_out = (checks == Checks::All).then(|| ctx.planner.sampled_out(name, &c.event)).flatten();
        if outside_window(&c.event, rules.window(), now) {
            updates.push(end(DeliveryState::Skipped, AttemptOutcome::Skipped, reason::OUTSIDE_WINDOW, vec![]));
        } else if let Some(why) = past_browser_dedupe(rules.as_ref(), &c.event, &c.route, now) {
            // A retry (or resend) the platform would no longer keep apart from the browser's copy.
            updates.push(end(DeliveryState::Skipped, AttemptOutcome::Skipped, reason::BROWSER_TRACKED, vec![why]));
        } else if checks == Checks::All && !rules.identity_ok(&c.event) {
            // A wait for identity that ended with no capture (it is claimed when its wait ends):
            // never sent without the identity the platform needs.
            updates.push(end(DeliveryState::Skipped, AttemptOutcome::Skipped, reason::NO_IDENTITY, vec![]));
        } else if let Some(why) = sampled_out {
            updates.push(end(DeliveryState::Skipped, AttemptOutcome::Skipped, reason::NOT_SAMPLED, vec![why]));
        } else if now - c.created_at > outcome::max_age(&ctx.retry) {
            updates.push(end(DeliveryState::Dead, AttemptOutcome::Dead, reason::AGE_EXHAUSTED, vec![]));
        } else if checks == Checks::Time {
            ready.push(c);
        } else {
            let messages = rules.validate(&c.event, &c.route, c.strip_personal);
            if messages.is_empty() {
                ready.push(c);
            } else {
                updates.push(end(DeliveryState::Rejected, AttemptOutcome::Rejected, reason::INVALID, messages));
            }
        }
    }
    // Counted as the planner's skips are when ingest plans them.
    for u in updates.iter().filter(|u| matches!(u.reason.as_deref(), Some(reason::NO_IDENTITY | reason::NOT_SAMPLED))) {
        ctx.metrics.delivery(name, u.state.as_str(), u.reason.as_deref());
    }
    if !updates.is_empty() {
        let ended =
            BatchRecord { destination: name.to_owned(), owner: ctx.owner.clone(), updates, ..BatchRecord::default() };
        record(ctx, ended).await;
    }
    ready
}

/// One batch: the last check of what may still be sent, preflight, mark as sending, send,
/// settle each outcome, record.
#[tracing::instrument(name = "send", skip_all, fields(destination = %dest.name(), deliveries = batch.len()))]
async fn send(ctx: &WorkerContext, dest: &dyn Destination, batch: Vec<Claimed>, breaker: &SharedBreaker) {
    let name = dest.name().to_owned();
    let batch = end_unsendable(ctx, &name, batch, Utc::now(), Checks::Time).await;
    if batch.is_empty() {
        return;
    }
    let mut rec = BatchRecord { destination: name.clone(), owner: ctx.owner.clone(), ..BatchRecord::default() };
    let mut pre = dest.preflight(&batch).await;
    tell_breaker(&name, &pre, breaker, &ctx.metrics.lanes);
    let refused: HashSet<i64> = pre.outcomes.iter().map(|r| r.delivery_id).collect();
    let validated = std::mem::take(&mut pre.validated);
    add_to_record(ctx, dest, &mut rec, pre, &batch, false);
    let mut to_send: Vec<Claimed> = batch.iter().filter(|c| !refused.contains(&c.delivery_id)).cloned().collect();
    if !to_send.is_empty() {
        let ids: Vec<i64> = to_send.iter().map(|c| c.delivery_id).collect();
        let marked: HashSet<i64> = match ctx.store.mark_sending(&ids, &ctx.owner, Utc::now()).await {
            Ok(marked) => marked.into_iter().collect(),
            Err(e) => {
                tracing::error!(error = %e, "could not mark the batch as sending; not sending it");
                let _ = ctx.store.release(&ids, Utc::now()).await;
                record(ctx, rec).await;
                return;
            }
        };
        // A delivery this batch no longer holds (its lease ran out while the batch waited, and it
        // was taken back and claimed again) is sent by the claim that marked it, never by both.
        if marked.len() < to_send.len() {
            tracing::warn!(
                lost = to_send.len() - marked.len(),
                "deliveries whose lease ran out before their batch left are left to the claim that holds them now"
            );
            to_send.retain(|c| marked.contains(&c.delivery_id));
        }
    }
    if !to_send.is_empty() {
        let mut report = dest.send(&to_send, &validated).await;
        // Every delivery sent gets an outcome, even if an adapter forgot one.
        let answered: HashSet<i64> = report.outcomes.iter().map(|r| r.delivery_id).collect();
        for c in to_send.iter().filter(|c| !answered.contains(&c.delivery_id)) {
            tracing::error!(delivery_id = c.delivery_id, "no outcome reported; retrying");
            report.outcomes.push(DeliveryOutcome {
                delivery_id: c.delivery_id,
                outcome: Outcome::retry("the adapter reported no outcome", None),
                payload_sha256: None,
                request: None,
            });
        }
        tell_breaker(&name, &report, breaker, &ctx.metrics.lanes);
        add_to_record(ctx, dest, &mut rec, report, &to_send, true);
    }
    record(ctx, rec).await;
}

#[cfg(test)]
mod dedupe_window_tests;
