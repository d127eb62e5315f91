//! A circuit breaker per destination: after sustained failure the worker stops claiming for a
//! while (so deliveries keep their attempts instead of burning them on a platform that is down),
//! then lets one probe through; a probe that succeeds closes the circuit. A "halt" (the
//! platform said our credentials are bad) opens it at once, for longer: retrying would only
//! hammer the platform with requests it must refuse.

use std::time::Instant;

pub use crate::core::retry::BreakerPolicy;

/// What the worker may do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Claim as usual.
    Closed,
    /// Claim a single delivery to probe the platform.
    Probe,
    /// Claim nothing until this instant.
    Open(Instant),
}

#[derive(Debug)]
pub struct Breaker {
    policy: BreakerPolicy,
    failures: u32,
    openings: u32,
    open_until: Option<Instant>,
    probing: bool,
    /// Why it is open, for logs and the timeline.
    pub why: Option<String>,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Self {
        Self { policy, failures: 0, openings: 0, open_until: None, probing: false, why: None }
    }

    pub fn gate(&mut self, now: Instant) -> Gate {
        match self.open_until {
            Some(until) if now < until => Gate::Open(until),
            Some(_) => {
                self.probing = true;
                Gate::Probe
            }
            None => Gate::Closed,
        }
    }

    /// Until when it claims nothing (past: the next claim probes); none while closed.
    pub fn open_until(&self) -> Option<Instant> {
        self.open_until
    }

    /// Whether the circuit is open or probing.
    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }

    /// A request (or batch) reached the platform and was answered sensibly.
    pub fn success(&mut self) {
        self.failures = 0;
        self.openings = 0;
        self.open_until = None;
        self.probing = false;
        self.why = None;
    }

    /// A request failed in a way that says the platform is unwell (network, timeout, 5xx, 429).
    /// Returns true when this opened the circuit.
    pub fn failure(&mut self, now: Instant, why: &str) -> bool {
        self.failures += 1;
        if self.probing || self.failures >= self.policy.threshold {
            let exp = self.openings.min(16);
            let cooldown = self.policy.cooldown.saturating_mul(1 << exp).min(self.policy.max_cooldown);
            self.open(now + cooldown, why);
            return true;
        }
        false
    }

    /// The platform refused our credentials: open for the halt period.
    pub fn halt(&mut self, now: Instant, why: &str) {
        self.open(now + self.policy.halt_cooldown, why);
    }

    fn open(&mut self, until: Instant, why: &str) {
        self.openings += 1;
        self.failures = 0;
        self.probing = false;
        self.open_until = Some(until);
        self.why = Some(why.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn policy() -> BreakerPolicy {
        BreakerPolicy {
            threshold: 3,
            cooldown: Duration::from_secs(10),
            max_cooldown: Duration::from_secs(40),
            halt_cooldown: Duration::from_secs(600),
        }
    }

    #[test]
    fn opens_after_threshold_then_probes_then_closes() {
        let t0 = Instant::now();
        let mut b = Breaker::new(policy());
        assert_eq!(b.gate(t0), Gate::Closed);
        assert!(!b.failure(t0, "503"));
        assert!(!b.failure(t0, "503"));
        assert!(b.failure(t0, "503"));
        assert_eq!(b.gate(t0 + Duration::from_secs(5)), Gate::Open(t0 + Duration::from_secs(10)));
        assert_eq!(b.gate(t0 + Duration::from_secs(10)), Gate::Probe);
        b.success();
        assert_eq!(b.gate(t0 + Duration::from_secs(11)), Gate::Closed);
        assert!(!b.is_open());
    }

    #[test]
    fn a_failed_probe_reopens_for_longer_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = Breaker::new(policy());
        for _ in 0..3 {
            b.failure(t0, "timeout");
        }
        let mut now = t0;
        let mut periods = Vec::new();
        for _ in 0..4 {
            let Gate::Open(until) = b.gate(now) else { panic!("open") };
            periods.push((until - now).as_secs());
            now = until;
            assert_eq!(b.gate(now), Gate::Probe);
            assert!(b.failure(now, "timeout"), "a failed probe reopens at once");
        }
        assert_eq!(periods, [10, 20, 40, 40]);
    }

    #[test]
    fn success_resets_the_count() {
        let t0 = Instant::now();
        let mut b = Breaker::new(policy());
        b.failure(t0, "x");
        b.failure(t0, "x");
        b.success();
        assert!(!b.failure(t0, "x"));
        assert_eq!(b.gate(t0), Gate::Closed);
    }

    #[test]
    fn halt_opens_at_once_for_the_halt_period() {
        let t0 = Instant::now();
        let mut b = Breaker::new(policy());
        b.halt(t0, "token expired");
        assert_eq!(b.gate(t0), Gate::Open(t0 + Duration::from_secs(600)));
        assert_eq!(b.why.as_deref(), Some("token expired"));
    }
}
