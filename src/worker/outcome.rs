//! From a destination's verdict to the delivery's next state: the retry budget, the age limit and
//! the backoff are applied here, in one pure function.

use chrono::{DateTime, Duration as ChronoDuration, Utc};

use crate::core::delivery::reason;
use crate::core::retry::RetryPolicy;
use crate::core::{Claimed, DeliveryState, Outcome};

/// What an outcome comes to for one delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct Settled {
    pub state: DeliveryState,
    pub reason: Option<String>,
    pub messages: Vec<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The attempt log's word for it.
    pub outcome: &'static str,
    pub detail: Option<String>,
}

/// Applies the retry policy to an outcome. `jitter` is uniform in [0, 1).
pub fn settle(outcome: &Outcome, claimed: &Claimed, policy: &RetryPolicy, now: DateTime<Utc>, jitter: f64) -> Settled {
    match outcome {
        Outcome::Delivered { accepted, detail } => Settled {
            state: DeliveryState::Delivered,
            reason: Some(if *accepted { "accepted" } else { reason::SENT }.to_owned()),
            messages: vec![],
            next_attempt_at: None,
            outcome: "delivered",
            detail: detail.clone(),
        },
        Outcome::Rejected { reason: why, messages } => Settled {
            state: DeliveryState::Rejected,
            reason: Some(why.clone()),
            messages: messages.clone(),
            next_attempt_at: None,
            outcome: "rejected",
            detail: messages.first().cloned(),
        },
        Outcome::OutsideWindow => Settled {
            state: DeliveryState::Skipped,
            reason: Some(reason::OUTSIDE_WINDOW.to_owned()),
            messages: vec![],
            next_attempt_at: None,
            outcome: "skipped",
            detail: None,
        },
        Outcome::Skipped { reason: why, detail } => Settled {
            state: DeliveryState::Skipped,
            reason: Some((*why).to_owned()),
            messages: vec![detail.clone()],
            next_attempt_at: None,
            outcome: "skipped",
            detail: Some(detail.clone()),
        },
        Outcome::Retry { reason: why, retry_after } => {
            let attempt = claimed.attempts + 1;
            let dead = |code: &'static str| Settled {
                state: DeliveryState::Dead,
                reason: Some(code.to_owned()),
                messages: vec![format!("last error: {why}")],
                next_attempt_at: None,
                outcome: "retry",
                detail: Some(why.clone()),
            };
            if attempt >= policy.max_attempts {
                return dead(reason::ATTEMPTS_EXHAUSTED);
            }
            let delay = policy.delay(attempt, jitter, *retry_after);
            let next = now + ChronoDuration::from_std(delay).unwrap_or(ChronoDuration::MAX);
            if next - claimed.created_at > max_age(policy) {
                return dead(reason::AGE_EXHAUSTED);
            }
            Settled {
                state: DeliveryState::Pending,
                reason: None,
                messages: vec![],
                next_attempt_at: Some(next),
                outcome: "retry",
                detail: Some(why.clone()),
            }
        }
    }
}

/// The policy's age limit, saturating instead of overflowing.
pub fn max_age(policy: &RetryPolicy) -> ChronoDuration {
    i64::try_from(policy.max_age_secs).ok().and_then(ChronoDuration::try_seconds).unwrap_or(ChronoDuration::MAX)
}

#[cfg(test)]
mod tests;
