//! Delivery workers: one per destination, so a sick platform only slows itself (G9). Each claims
//! due deliveries with a lease, re-checks the time window, batches, marks the batch as sending,
//! sends, and records every outcome — a failed attempt is always rescheduled or ended with a
//! reason, never dropped.

mod breaker;
mod follow_up;
mod outcome;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use breaker::{Breaker, BreakerPolicy, Gate};
pub use outcome::{settle, Settled};

use crate::config::WorkerConfig;
use crate::core::delivery::reason;
use crate::core::plan::{outside_window, past_browser_dedupe, Planner};
use crate::core::retry::RetryPolicy;
use crate::core::{Claimed, DeliveryState, Outcome};
use crate::delivery::{DeliveryResult, Destination, SendReport};
use crate::store::{DeliveryUpdate, Recording, Store};
use crate::telemetry::{AttemptLabels, DestinationLabels, Metrics};

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
pub async fn run(ctx: WorkerContext, lane: Lane, wake: Arc<Notify>, cancel: CancellationToken) {
    let dest = lane.destination.clone();
    let name = dest.name().to_owned();
    let permits = Arc::new(Semaphore::new(dest.concurrency()));
    let breaker: SharedBreaker = Arc::new(Mutex::new(Breaker::new(ctx.breaker.clone())));
    let mut next_send = tokio::time::Instant::now();
    let mut in_flight = JoinSet::new();
    let lease = Duration::from_secs(ctx.config.lease_secs);
    tracing::info!(destination = %name, "worker started");
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
        let claimed = match ctx.store.claim(&name, limit, lease, &ctx.owner, Utc::now()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(destination = %name, error = %e, "claim failed");
                idle(&ctx, &name, &wake, &cancel, true).await;
                continue;
            }
        };
        if claimed.is_empty() {
            idle(&ctx, &name, &wake, &cancel, false).await;
            continue;
        }
        let ready = expire(&ctx, &name, claimed, Utc::now()).await;
        let mut batches = dest.batches(ready).into_iter();
        while let Some(batch) = batches.next() {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p,
                _ = cancel.cancelled() => {
                    // Never sent: give these and the rest back, due at once.
                    let ids: Vec<i64> = std::iter::once(batch).chain(batches.by_ref()).flatten().map(|c| c.delivery_id).collect();
                    if let Err(e) = ctx.store.release(&ids, Utc::now()).await {
                        tracing::warn!(destination = %name, error = %e, "release at shutdown failed; recovered at next start");
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
                process(&ctx, dest.as_ref(), batch, &breaker).await;
                drop(permit);
            });
        }
    }
    while in_flight.join_next().await.is_some() {}
    if let Some(asking) = asking {
        let _ = asking.await;
    }
    tracing::info!(destination = %name, "worker stopped");
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

/// Ends, without sending, what must not be sent any more: events now outside the window (never
/// re-timed), browser-tracked ones past the platform's dedupe window, deliveries past their age
/// limit, and payloads the platform's rules now refuse.
async fn expire(ctx: &WorkerContext, name: &str, claimed: Vec<Claimed>, now: chrono::DateTime<Utc>) -> Vec<Claimed> {
    let Some(rules) = ctx.planner.rules(name) else {
        return claimed;
    };
    let mut ready = Vec::with_capacity(claimed.len());
    let mut updates = Vec::new();
    for c in claimed {
        let end = |state: DeliveryState, why: &'static str, messages: Vec<String>| DeliveryUpdate {
            delivery_id: c.delivery_id,
            state,
            reason: Some(why.to_owned()),
            messages,
            next_attempt_at: None,
            attempted: false,
            outcome: state.as_str(),
            detail: Some(format!("ended before sending: {why}")),
            payload_sha256: None,
            request: None,
            forced: c.forced,
        };
        if outside_window(&c.event, rules.window(), now) {
            updates.push(end(DeliveryState::Skipped, reason::OUTSIDE_WINDOW, vec![]));
        } else if let Some(why) = past_browser_dedupe(rules.as_ref(), &c.event, &c.route, now) {
            // A retry (or resend) the platform would no longer keep apart from the browser's copy.
            updates.push(end(DeliveryState::Skipped, reason::BROWSER_TRACKED, vec![why]));
        } else if !rules.identity_ok(&c.event) {
            // A wait for identity that ended with no capture (it is claimed when its wait ends):
            // never sent without the identity the platform needs.
            updates.push(end(DeliveryState::Skipped, reason::NO_IDENTITY, vec![]));
        } else if now - c.created_at > outcome::max_age(&ctx.retry) {
            updates.push(end(DeliveryState::Dead, reason::AGE_EXHAUSTED, vec![]));
        } else {
            let messages = rules.validate(&c.event, &c.route, c.strip_personal);
            if messages.is_empty() {
                ready.push(c);
            } else {
                updates.push(end(DeliveryState::Rejected, reason::INVALID, messages));
            }
        }
    }
    // Counted as the planner's skips are when ingest plans them.
    for u in updates.iter().filter(|u| u.reason.as_deref() == Some(reason::NO_IDENTITY)) {
        ctx.metrics.delivery(name, u.state.as_str(), u.reason.as_deref());
    }
    if !updates.is_empty() {
        save(
            ctx,
            Recording { destination: name.to_owned(), owner: ctx.owner.clone(), updates, ..Recording::default() },
        )
        .await;
    }
    ready
}

/// One batch: preflight, mark as sending, send, settle each outcome, record.
async fn process(ctx: &WorkerContext, dest: &dyn Destination, batch: Vec<Claimed>, breaker: &SharedBreaker) {
    let name = dest.name().to_owned();
    let mut recording = Recording { destination: name.clone(), owner: ctx.owner.clone(), ..Recording::default() };
    let mut pre = dest.preflight(&batch).await;
    judge(&name, &pre, breaker);
    let refused: HashSet<i64> = pre.results.iter().map(|r| r.delivery_id).collect();
    let validated = std::mem::take(&mut pre.validated);
    absorb(ctx, dest, &mut recording, pre, &batch, false);
    let to_send: Vec<Claimed> = batch.iter().filter(|c| !refused.contains(&c.delivery_id)).cloned().collect();
    if !to_send.is_empty() {
        let ids: Vec<i64> = to_send.iter().map(|c| c.delivery_id).collect();
        if let Err(e) = ctx.store.mark_sending(&ids, Utc::now()).await {
            tracing::error!(destination = %name, error = %e, "could not mark the batch as sending; not sending it");
            let _ = ctx.store.release(&ids, Utc::now()).await;
            save(ctx, recording).await;
            return;
        }
        let mut report = dest.send(&to_send, &validated).await;
        // Every delivery sent gets an outcome, even if an adapter forgot one.
        let answered: HashSet<i64> = report.results.iter().map(|r| r.delivery_id).collect();
        for c in to_send.iter().filter(|c| !answered.contains(&c.delivery_id)) {
            tracing::error!(destination = %name, delivery_id = c.delivery_id, "no outcome reported; retrying");
            report.results.push(DeliveryResult {
                delivery_id: c.delivery_id,
                outcome: Outcome::Retry { reason: "the adapter reported no outcome".into(), retry_after: None },
                payload_sha256: None,
                request: None,
            });
        }
        judge(&name, &report, breaker);
        absorb(ctx, dest, &mut recording, report, &to_send, true);
    }
    save(ctx, recording).await;
}

/// What a report says about the platform's health, told to the breaker: credentials refused
/// ("halt:" reasons) open it at once; a report whose every delivery must be retried counts as
/// a failure; anything the platform answered on its merits is a success.
fn judge(name: &str, report: &SendReport, breaker: &SharedBreaker) {
    let now = std::time::Instant::now();
    let retry_reasons: Vec<&str> = report
        .results
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Retry { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    if let Some(halt) = retry_reasons.iter().find(|r| r.starts_with("halt:")) {
        tracing::error!(destination = %name, reason = %halt, "destination halted: fix its credentials; deliveries wait");
        lock(breaker).halt(now, halt);
    } else if !report.results.is_empty() && retry_reasons.len() == report.results.len() {
        if lock(breaker).failure(now, retry_reasons[0]) {
            tracing::warn!(destination = %name, reason = %retry_reasons[0], "circuit open: pausing this destination");
        }
    } else if report.results.iter().any(|r| !matches!(r.outcome, Outcome::OutsideWindow)) || !report.requests.is_empty()
    {
        let mut b = lock(breaker);
        if b.is_open() {
            tracing::info!(destination = %name, "circuit closed: the platform answers again");
        }
        b.success();
    }
}

/// Turns a destination's report into ledger updates and metrics.
fn absorb(
    ctx: &WorkerContext,
    dest: &dyn Destination,
    rec: &mut Recording,
    report: SendReport,
    batch: &[Claimed],
    sent: bool,
) {
    let offset = rec.requests.len();
    if let Some(after) = dest.follow_up_after() {
        let at = Utc::now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX);
        rec.follow_ups.extend(report.follow_ups.iter().map(|(i, id)| (i + offset, id.clone(), at)));
    }
    for r in &report.requests {
        let code = r.status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        ctx.metrics
            .attempts
            .get_or_create(&AttemptLabels { destination: rec.destination.clone(), status_code: code })
            .inc();
    }
    rec.requests.extend(report.requests);
    let now = Utc::now();
    for DeliveryResult { delivery_id, outcome, payload_sha256, request } in report.results {
        let Some(claimed) = batch.iter().find(|c| c.delivery_id == delivery_id) else {
            tracing::warn!(delivery_id, "destination reported on a delivery not in the batch");
            continue;
        };
        let jitter: f64 = rand::random();
        let settled = settle(&outcome, claimed, &ctx.retry, now, jitter);
        if settled.state.is_ended() {
            ctx.metrics.delivery(&rec.destination, settled.state.as_str(), settled.reason.as_deref());
        }
        if settled.state == DeliveryState::Delivered {
            let secs = (now - claimed.event.received_at).num_milliseconds().max(0) as f64 / 1000.0;
            ctx.metrics
                .latency
                .get_or_create(&DestinationLabels { destination: rec.destination.clone() })
                .observe(secs);
        }
        rec.updates.push(DeliveryUpdate {
            delivery_id,
            state: settled.state,
            reason: settled.reason,
            messages: settled.messages,
            next_attempt_at: settled.next_attempt_at,
            attempted: sent || matches!(outcome, Outcome::Retry { .. }),
            outcome: settled.outcome,
            detail: settled.detail,
            payload_sha256,
            request: request.map(|i| i + offset),
            forced: claimed.forced,
        });
    }
}

/// Records, retrying until it is written: the sends already happened, so the outcome is kept and
/// written again rather than dropped (dropping it would leave the rows to lease recovery, which
/// settles them as in doubt or sends them again). The delay stays short (at most a second), so
/// once the ledger can commit again the outcome lands before the lease recovery looks (a lease
/// lasts `lease_secs`). Only a closed store ends it early: the process is going away, and crash
/// recovery settles the rows at the next start.
async fn save(ctx: &WorkerContext, recording: Recording) {
    if recording.updates.is_empty() && recording.requests.is_empty() {
        return;
    }
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match ctx.store.record(recording.clone(), Utc::now()).await {
            Ok(()) => return,
            Err(crate::store::StoreError::Closed) => {
                tracing::error!(destination = %recording.destination, "the store closed before outcomes were recorded");
                return;
            }
            Err(e) => {
                if attempt == 1 || attempt.is_multiple_of(30) {
                    tracing::error!(destination = %recording.destination, attempt, error = %e, "recording outcomes failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis((50 * u64::from(attempt)).min(1000))).await;
            }
        }
    }
}

#[cfg(test)]
mod dedupe_window_tests;
