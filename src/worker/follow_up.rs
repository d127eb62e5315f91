//! The follow-up loop: asks a platform, request by request, what became of what it took for
//! processing (Google's `requestStatus:retrieve`), and settles the request's deliveries by its
//! answer. Asking is bounded: polls thin out as the request ages, and a request the platform
//! still has not answered for [`Destination::follow_up_give_up_after`] — or whose id it does not
//! know — is closed as [`FollowUp::Unconfirmed`]: its deliveries stay delivered, with the reason
//! `processing_unknown`, so the ledger shows the platform never confirmed processing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::WorkerContext;
use crate::core::FollowUp;
use crate::delivery::Destination;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Requests asked about per round.
const ROUND: usize = 50;

/// Runs until `cancel`: asks about every due request, then sleeps a poll interval when none was due.
pub(super) async fn run(ctx: WorkerContext, dest: Arc<dyn Destination>, after: Duration, cancel: CancellationToken) {
    let poll = Duration::from_millis(ctx.config.poll_interval_ms);
    while !cancel.is_cancelled() {
        if round(ctx.store.as_ref(), &ctx.metrics, dest.as_ref(), after, Utc::now()).await == 0 {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = cancel.cancelled() => {}
            }
        }
    }
}

/// Asks about the requests due at `now` (at most [`ROUND`]) and records each answer; returns how
/// many were due. `after` is the destination's first delay ([`Destination::follow_up_after`]).
/// Each question and each final answer is counted in `metrics`.
pub(super) async fn round(
    store: &dyn Store,
    metrics: &Metrics,
    dest: &dyn Destination,
    after: Duration,
    now: DateTime<Utc>,
) -> usize {
    let name = dest.name();
    let due = match store.due_follow_ups(name, now, ROUND).await {
        Ok(due) => due,
        Err(e) => {
            tracing::error!(destination = %name, error = %e, "reading due follow-ups failed");
            return 0;
        }
    };
    let give_up = dest.follow_up_give_up_after();
    for d in &due {
        let answer = dest.follow_up(&d.platform_request_id).await;
        let answer = close_unanswered(answer, d.sent_at, now, give_up);
        metrics.follow_up(name, &answer);
        if let FollowUp::Unconfirmed(why) = &answer {
            tracing::warn!(destination = %name, platform_request_id = %d.platform_request_id, reason = %why,
                "follow-up given up: the deliveries stay delivered, marked processing_unknown");
        }
        let again = next_ask(d.sent_at, now, after, give_up);
        if let Err(e) = store.record_follow_up(d.request_id, answer, Some(again), now).await {
            tracing::error!(destination = %name, error = %e, "recording a follow-up failed");
        }
    }
    due.len()
}

/// An answer that leaves the request open (still processing, or the question failed) closes it
/// as unconfirmed once the request is `give_up` old; a final answer stands at any age.
fn close_unanswered(answer: FollowUp, sent_at: DateTime<Utc>, now: DateTime<Utc>, give_up: Duration) -> FollowUp {
    let last = match &answer {
        FollowUp::NotYet => "still processing".to_owned(),
        FollowUp::Error(e) => format!("could not ask: {e}"),
        _ => return answer,
    };
    if now - sent_at < chrono::Duration::from_std(give_up).unwrap_or(chrono::Duration::MAX) {
        return answer;
    }
    FollowUp::Unconfirmed(format!("no processing result within {} of the send (last answer: {last})", span(give_up)))
}

/// When to ask again about a request still open: a quarter of the first delay (at least a
/// second), or a quarter of the request's age if that is longer, and no later than the give-up
/// point. Polls thus thin out geometrically: from a first delay of 30 minutes a request is asked
/// about about 20 times before it is given up at 24 h, from a first delay of 0 about 50 times.
fn next_ask(sent_at: DateTime<Utc>, now: DateTime<Utc>, after: Duration, give_up: Duration) -> DateTime<Utc> {
    let chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
    let floor = (after / 4).max(Duration::from_secs(1));
    let age = (now - sent_at).to_std().unwrap_or_default();
    let next = now + chrono(floor.max(age / 4));
    let last = sent_at.checked_add_signed(chrono(give_up)).unwrap_or(next);
    next.min(last.max(now + chrono(Duration::from_secs(1))))
}

/// `24 h`, `90 min`, `45 s`.
fn span(d: Duration) -> String {
    match d.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests;
