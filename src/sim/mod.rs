//! Platform simulators: stand-ins for the platforms Surety cannot reach from tests, `surety demo`
//! and `surety bench`. Each implements its platform's documented behaviour — validation, limits,
//! answers, ways of failing — independently of the adapter it tests, and can be told to fail.

pub mod ga4;
pub mod google_ads;
pub mod linkedin;
pub mod meta;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A way for a simulated platform to misbehave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and do not process the request.
    Status(u16),
    /// Answer 429 with `Retry-After: retry_after_secs` and do not process the request.
    TooManyRequests { retry_after_secs: u64 },
    /// Process the request at once but answer only after this long: a slow platform, or with a
    /// delay beyond the client's timeout, one whose answer is lost (the in-doubt case).
    Delay(Duration),
}

/// Which fault, if any, the next request meets: first the `fail_next` ones, then the standing one.
#[derive(Debug, Default)]
pub struct Faults {
    inner: Mutex<FaultsInner>,
}

#[derive(Debug, Default)]
struct FaultsInner {
    next: Option<(u32, Fault)>,
    standing: Option<Fault>,
}

impl Faults {
    /// The next `n` requests meet `fault` (replacing any earlier `fail_next`).
    pub fn fail_next(&self, n: u32, fault: Fault) {
        self.lock().next = (n > 0).then_some((n, fault));
    }

    /// Every request meets `fault` from now on (after any `fail_next` ones); `None` heals.
    pub fn set(&self, fault: Option<Fault>) {
        self.lock().standing = fault;
    }

    /// The fault for the request arriving now.
    pub fn take(&self) -> Option<Fault> {
        let mut inner = self.lock();
        if let Some((n, fault)) = inner.next.take() {
            if n > 1 {
                inner.next = Some((n - 1, fault.clone()));
            }
            return Some(fault);
        }
        inner.standing.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultsInner> {
        // Plain data: a panic elsewhere cannot leave it half-updated.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_next_then_standing_fault() {
        let f = Faults::default();
        assert_eq!(f.take(), None);
        f.set(Some(Fault::Status(500)));
        f.fail_next(2, Fault::TooManyRequests { retry_after_secs: 3 });
        assert_eq!(f.take(), Some(Fault::TooManyRequests { retry_after_secs: 3 }));
        assert_eq!(f.take(), Some(Fault::TooManyRequests { retry_after_secs: 3 }));
        assert_eq!(f.take(), Some(Fault::Status(500)));
        f.set(None);
        assert_eq!(f.take(), None);
        f.fail_next(0, Fault::Status(503));
        assert_eq!(f.take(), None);
    }
}
