//! What a batch's answers become: the breaker told how the platform is doing, each outcome
//! settled into the batch's record (with its metrics), and the record written to the ledger.

use std::time::Duration;

use chrono::Utc;

use super::lanes::tell_lanes;
use super::{lock, settle, SharedBreaker, WorkerContext};
use crate::core::{Claimed, DeliveryState, Outcome};
use crate::delivery::{DeliveryOutcome, Destination, SendReport};
use crate::store::{BatchRecord, DeliveryUpdate, StoreError};
use crate::telemetry::lanes::Lanes;
use crate::telemetry::{AttemptLabels, DestinationLabels};

/// What a report says about the platform's health, told to the breaker: a halt (credentials
/// refused) opens it at once; a report whose every delivery must be retried counts as a failure;
/// anything the platform answered on its merits is a success.
pub(super) fn tell_breaker(destination: &str, report: &SendReport, breaker: &SharedBreaker, lanes: &Lanes) {
    let now = std::time::Instant::now();
    let halt = report.outcomes.iter().find_map(|r| match &r.outcome {
        Outcome::Halt { reason } => Some(reason.as_str()),
        _ => None,
    });
    let retry_reasons: Vec<&str> = report
        .outcomes
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Retry { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    if let Some(halt) = halt {
        tracing::error!(destination, reason = %halt, "destination halted: fix its credentials; deliveries wait");
        lock(breaker).halt(now, halt);
    } else if !report.outcomes.is_empty() && retry_reasons.len() == report.outcomes.len() {
        if lock(breaker).failure(now, retry_reasons[0]) {
            tracing::warn!(destination, reason = %retry_reasons[0], "circuit open: pausing this destination");
        }
    } else if !report.outcomes.is_empty() || !report.requests.is_empty() {
        let mut b = lock(breaker);
        if b.is_open() {
            tracing::info!(destination, "circuit closed: the platform answers again");
        }
        b.success();
    }
    tell_lanes(destination, report, &lock(breaker), lanes, now);
}

/// Adds a destination's report to the batch's record: its requests, each outcome settled into a
/// ledger update, and the metrics.
pub(super) fn add_to_record(
    ctx: &WorkerContext,
    dest: &dyn Destination,
    rec: &mut BatchRecord,
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
    rec.requests.extend(report.requests.into_iter().map(|mut r| {
        if !ctx.keep_request_bodies {
            r.body = None;
        }
        r
    }));
    let now = Utc::now();
    for DeliveryOutcome { delivery_id, outcome, payload_sha256, request } in report.outcomes {
        let Some(claimed) = batch.iter().find(|c| c.delivery_id == delivery_id) else {
            tracing::warn!(delivery_id, "destination reported on a delivery not in the batch");
            continue;
        };
        let jitter: f64 = rand::random();
        let update = settle(&outcome, claimed, &ctx.retry, now, jitter);
        if update.state.is_ended() {
            ctx.metrics.delivery(&rec.destination, update.state.as_str(), update.reason.as_deref());
        }
        if matches!(update.state, DeliveryState::Rejected | DeliveryState::Dead | DeliveryState::InDoubt) {
            // One line per delivery that now needs a person, with what the platform said.
            tracing::warn!(
                destination = %rec.destination,
                delivery_id,
                event_id = %claimed.event.event_id,
                state = update.state.as_str(),
                reason = update.reason.as_deref().unwrap_or(""),
                error = %update.messages.join("; "),
                "delivery ended {}: it needs a person (surety dlq list)",
                update.state.as_str()
            );
        }
        if update.state == DeliveryState::Delivered {
            let secs = (now - claimed.event.received_at).num_milliseconds().max(0) as f64 / 1000.0;
            ctx.metrics
                .latency
                .get_or_create(&DestinationLabels { destination: rec.destination.clone() })
                .observe(secs);
        }
        rec.updates.push(DeliveryUpdate {
            attempted: sent || outcome.is_retry(),
            payload_sha256,
            request: request.map(|i| i + offset),
            ..update
        });
    }
}

/// Records, retrying until it is written: the sends already happened, so the outcome is kept and
/// written again rather than dropped (dropping it would leave the rows to lease recovery, which
/// settles them as in doubt or sends them again). The delay stays short (at most a second), so
/// once the ledger can commit again the outcome lands before the lease recovery looks (a lease
/// lasts `lease_secs`). Only a closed store ends it early: the process is going away, and crash
/// recovery settles the rows at the next start.
#[tracing::instrument(name = "record", skip_all,
    fields(destination = %batch.destination, updates = batch.updates.len(), requests = batch.requests.len()))]
pub(super) async fn record(ctx: &WorkerContext, batch: BatchRecord) {
    if batch.updates.is_empty() && batch.requests.is_empty() {
        return;
    }
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match ctx.store.record(batch.clone(), Utc::now()).await {
            Ok(()) => return,
            Err(StoreError::Closed) => {
                tracing::error!("the store closed before outcomes were recorded");
                return;
            }
            Err(e) => {
                if attempt == 1 || attempt.is_multiple_of(30) {
                    tracing::error!(attempt, error = %e, "recording outcomes failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis((50 * u64::from(attempt)).min(1000))).await;
            }
        }
    }
}
