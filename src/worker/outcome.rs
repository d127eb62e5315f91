//! From a destination's [`Outcome`] to the delivery's next state: the retry budget, the age limit
//! and the backoff are applied here, in one pure function.

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::core::delivery::reason;
use crate::core::retry::RetryPolicy;
use crate::core::{AttemptOutcome, Claimed, DeliveryState, Outcome};
use crate::store::DeliveryUpdate;

/// Applies the retry policy to an outcome: the ledger update for `claimed`. `jitter` is uniform
/// in [0, 1). The update counts as an attempt and names no payload or request; the caller, who
/// knows what was sent, fills those in.
pub fn settle(
    outcome: &Outcome,
    claimed: &Claimed,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
    jitter: f64,
) -> DeliveryUpdate {
    let update = |state, why: Option<String>, messages: Vec<String>, outcome, detail| DeliveryUpdate {
        delivery_id: claimed.delivery_id,
        state,
        reason: why,
        messages,
        next_attempt_at: None,
        attempted: true,
        outcome,
        detail,
        payload_sha256: None,
        request: None,
        forced: claimed.forced,
    };
    let (why, after) = match outcome {
        Outcome::Delivered { accepted, detail } => {
            let why = if *accepted { "accepted" } else { reason::SENT };
            return update(
                DeliveryState::Delivered,
                Some(why.to_owned()),
                vec![],
                AttemptOutcome::Delivered,
                detail.clone(),
            );
        }
        Outcome::Rejected { reason: why, messages } => {
            let detail = messages.first().cloned();
            return update(
                DeliveryState::Rejected,
                Some(why.clone()),
                messages.clone(),
                AttemptOutcome::Rejected,
                detail,
            );
        }
        Outcome::Skipped { reason: why, detail } => {
            let (why, messages, detail) = (Some((*why).to_owned()), vec![detail.clone()], Some(detail.clone()));
            return update(DeliveryState::Skipped, why, messages, AttemptOutcome::Skipped, detail);
        }
        Outcome::Retry { reason: why, after } => (why.clone(), after.floor()),
        // The ledger keeps the word: a reader of the timeline sees the destination was stopped.
        Outcome::Halt { reason: why } => (format!("halt: {why}"), None),
    };
    let attempt = claimed.attempts + 1;
    let dead = |code: &'static str| {
        let messages = vec![format!("last error: {why}")];
        update(DeliveryState::Dead, Some(code.to_owned()), messages, AttemptOutcome::Retry, Some(why.clone()))
    };
    if attempt >= policy.max_attempts {
        return dead(reason::ATTEMPTS_EXHAUSTED);
    }
    let delay = policy.delay(attempt, jitter, after);
    let next = now + ChronoDuration::from_std(delay).unwrap_or(ChronoDuration::MAX);
    if next - claimed.created_at > max_age(policy) {
        return dead(reason::AGE_EXHAUSTED);
    }
    DeliveryUpdate {
        next_attempt_at: Some(next),
        ..update(DeliveryState::Pending, None, vec![], AttemptOutcome::Retry, Some(why.clone()))
    }
}

/// The policy's age limit, saturating instead of overflowing.
pub fn max_age(policy: &RetryPolicy) -> ChronoDuration {
    i64::try_from(policy.max_age_secs).ok().and_then(ChronoDuration::try_seconds).unwrap_or(ChronoDuration::MAX)
}

#[cfg(test)]
mod tests;
