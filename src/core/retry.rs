//! How long to wait before the next attempt: exponential backoff with full jitter, with the
//! platform's `Retry-After` as a floor. Whether to retry at all is the destination's call.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The retry policy of `[retry]` in the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; then `dead:attempts_exhausted`.
    pub max_attempts: u32,
    /// The longest a delivery may stay undelivered after it was planned; then `dead:age_exhausted`.
    pub max_age_secs: u64,
    /// The backoff's first step.
    pub base_delay_ms: u64,
    /// The backoff's ceiling.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 12, max_age_secs: 48 * 3600, base_delay_ms: 1_000, max_delay_ms: 600_000 }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1-based), given `jitter` drawn uniformly
    /// from [0, 1): full jitter over `min(max, base · 2^(attempt-1))`, never below `retry_after`.
    pub fn delay(&self, attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let exp = attempt.saturating_sub(1).min(40);
        let ceiling = self.base_delay_ms.saturating_mul(1u64 << exp).min(self.max_delay_ms);
        let jittered = Duration::from_millis((ceiling as f64 * jitter.clamp(0.0, 1.0)) as u64);
        match retry_after {
            Some(floor) => jittered.max(floor),
            None => jittered,
        }
    }
}

/// Settings of the per-destination circuit breaker (`worker::breaker`), from `[worker]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed requests that open the circuit.
    pub threshold: u32,
    /// First open period; doubles at each re-opening up to `max_cooldown`.
    pub cooldown: Duration,
    pub max_cooldown: Duration,
    /// Open period after a halt (bad credentials).
    pub halt_cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            cooldown: Duration::from_secs(5),
            max_cooldown: Duration::from_secs(300),
            halt_cooldown: Duration::from_secs(300),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy { max_attempts: 10, max_age_secs: 3600, base_delay_ms: 100, max_delay_ms: 10_000 }
    }

    #[test]
    fn ceiling_doubles_then_caps() {
        let p = policy();
        let top = |a| p.delay(a, 0.999_999_9, None).as_millis();
        assert_eq!(top(1), 99);
        assert_eq!(top(2), 199);
        assert_eq!(top(4), 799);
        assert_eq!(top(20), 9_999);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = policy();
        assert_eq!(p.delay(1, 0.0, Some(Duration::from_secs(30))), Duration::from_secs(30));
        assert_eq!(p.delay(1, 0.5, None), Duration::from_millis(50));
    }

    proptest! {
        #[test]
        fn delay_within_bounds(attempt in 1u32..1000, jitter in 0.0f64..1.0) {
            let p = policy();
            let d = p.delay(attempt, jitter, None).as_millis() as u64;
            prop_assert!(d <= p.max_delay_ms);
            let ceiling = (p.base_delay_ms << (attempt - 1).min(20)).min(p.max_delay_ms);
            prop_assert!(d <= ceiling);
        }

        #[test]
        fn delay_grows_with_jitter(attempt in 1u32..30, a in 0.0f64..1.0, b in 0.0f64..1.0) {
            let p = policy();
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            prop_assert!(p.delay(attempt, lo, None) <= p.delay(attempt, hi, None));
        }
    }
}
