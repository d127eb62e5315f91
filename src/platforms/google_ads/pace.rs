//! The client-side request rate: a token bucket at `requests_per_minute` (Google's project quota
//! is 300 requests a minute), and a hold after `RESOURCE_EXHAUSTED` so that concurrent sends stop
//! asking until the quota has had time to refill. Waits are short by construction; a wait that
//! would hold a claimed batch too long is handed back as a retry instead (leases run out).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The longest a send waits for its turn before giving the batch back to be retried.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

pub struct Pace {
    /// Time between two requests at the configured rate.
    interval: Duration,
    /// Requests that may go at once after a quiet spell.
    burst: u32,
    state: Mutex<State>,
}

struct State {
    /// The theoretical arrival time of the next request (GCRA, the usual form of a token
    /// bucket): a request may go once `now` is within `burst - 1` intervals of it.
    tat: Instant,
    /// No request before this (after a 429).
    hold_until: Option<Instant>,
}

impl Pace {
    /// `per_minute` requests a minute, with bursts of a second's worth (at least one).
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = per_minute.max(1);
        Self {
            interval: Duration::from_secs(60) / per_minute,
            burst: per_minute.div_ceil(60),
            state: Mutex::new(State { tat: Instant::now(), hold_until: None }),
        }
    }

    /// How long a hold (from a 429) still lasts, if one does.
    pub fn held(&self) -> Option<Duration> {
        self.held_at(Instant::now())
    }

    /// No request goes before `wait` has passed.
    pub fn hold(&self, wait: Duration) {
        self.hold_at(Instant::now(), wait);
    }

    /// Waits for this request's turn. `Err(wait)` if the turn is more than [`MAX_WAIT`] away
    /// or a hold lasts (nothing is reserved then).
    pub async fn acquire(&self) -> Result<(), Duration> {
        let at = self.reserve(Instant::now())?;
        tokio::time::sleep_until(at).await;
        Ok(())
    }

    fn held_at(&self, now: Instant) -> Option<Duration> {
        self.lock().hold_until.filter(|&until| until > now).map(|until| until - now)
    }

    fn hold_at(&self, now: Instant, wait: Duration) {
        let until = now + wait;
        let mut state = self.lock();
        state.hold_until = Some(state.hold_until.map_or(until, |u| u.max(until)));
    }

    /// Reserves the next turn at `now`: when it is, or `Err(wait)` if it is too far.
    fn reserve(&self, now: Instant) -> Result<Instant, Duration> {
        let mut state = self.lock();
        if let Some(wait) = state.hold_until.filter(|&u| u > now).map(|u| u - now) {
            return Err(wait);
        }
        let tat = state.tat.max(now);
        let tolerance = self.interval * (self.burst - 1);
        let at = tat.checked_sub(tolerance).unwrap_or(now).max(now);
        let wait = at - now;
        if wait > MAX_WAIT {
            return Err(wait);
        }
        state.tat = tat + self.interval;
        Ok(at)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Two instants: a panic elsewhere cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bursts_then_paces() {
        let pace = Pace::per_minute(120); // 2 a second, bursts of 2
        let t0 = Instant::now() + Duration::from_secs(1);
        let after = |at: Instant, from: Instant| at.saturating_duration_since(from);
        assert_eq!(after(pace.reserve(t0).unwrap(), t0), Duration::ZERO);
        assert_eq!(after(pace.reserve(t0).unwrap(), t0), Duration::ZERO, "a burst goes at once");
        assert_eq!(after(pace.reserve(t0).unwrap(), t0), 500 * MS);
        assert_eq!(after(pace.reserve(t0).unwrap(), t0), 1000 * MS);
        // A quiet spell refills the bucket, up to the burst.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(after(pace.reserve(t1).unwrap(), t1), Duration::ZERO);
        assert_eq!(after(pace.reserve(t1).unwrap(), t1), Duration::ZERO);
        assert_eq!(after(pace.reserve(t1).unwrap(), t1), 500 * MS);
    }

    #[test]
    fn a_hold_refuses_and_a_long_wait_is_handed_back() {
        let pace = Pace::per_minute(300);
        let t0 = Instant::now() + Duration::from_secs(1);
        assert_eq!(pace.held_at(t0), None);
        pace.hold_at(t0, Duration::from_secs(60));
        assert_eq!(pace.held_at(t0), Some(Duration::from_secs(60)));
        assert_eq!(pace.reserve(t0), Err(Duration::from_secs(60)));
        pace.hold_at(t0, Duration::from_secs(5));
        assert_eq!(pace.held_at(t0), Some(Duration::from_secs(60)), "a shorter hold does not cut a longer one");
        let later = t0 + Duration::from_secs(61);
        assert_eq!(pace.held_at(later), None);
        assert_eq!(pace.reserve(later), Ok(later));

        let slow = Pace::per_minute(2); // one every 30 s
        assert_eq!(slow.reserve(t0), Ok(t0));
        assert_eq!(slow.reserve(t0), Err(Duration::from_secs(30)));
    }

    #[tokio::test]
    async fn acquire_waits_its_turn() {
        let pace = Pace::per_minute(600); // every 100 ms, bursts of 10
        let start = Instant::now();
        for _ in 0..11 {
            pace.acquire().await.unwrap();
        }
        assert!(start.elapsed() >= 90 * MS, "the eleventh waits: {:?}", start.elapsed());
    }
}
