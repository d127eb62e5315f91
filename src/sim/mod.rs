//! What the platform simulators share: serving on 127.0.0.1 ([`serve`], [`Running`]) and
//! injected faults ([`Fault`], [`Faults`]). The simulators themselves are stand-ins for the
//! platforms Surety cannot reach from tests, `surety demo` and `surety bench`, one per platform
//! in `crate::platforms::<p>::sim`: each implements its platform's documented behaviour —
//! validation, limits, answers, ways of failing — independently of the adapter it tests, and can
//! be told to fail.

use std::ops::Deref;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A simulator serving on 127.0.0.1 in a background task. Dereferences to its state, so the
/// fault and inspection methods are at hand; clones share the server.
#[derive(Clone)]
pub struct Running<S> {
    /// `http://127.0.0.1:PORT`: the `base_url` to configure a destination with.
    pub base_url: String,
    state: S,
    stop: CancellationToken,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

/// Binds 127.0.0.1 on a free port and serves `router` until [`Running::shutdown`].
pub async fn serve<S>(state: S, router: Router, name: &'static str) -> std::io::Result<Running<S>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let signal = stop.clone().cancelled_owned();
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(signal).await {
            tracing::warn!(error = %e, simulator = name, "a simulator stopped");
        }
    });
    Ok(Running { base_url: format!("http://{addr}"), state, stop, task: Arc::new(Mutex::new(Some(task))) })
}

impl<S> Running<S> {
    pub fn state(&self) -> &S {
        &self.state
    }

    /// Stops serving: waits up to 5 s for requests in progress, then cuts them off.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(Duration::from_secs(5), &mut task).await.is_err() {
                task.abort();
            }
        }
    }
}

impl<S> Deref for Running<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.state
    }
}

/// How a simulator is started: keeping what it received or counting only, and with what layer
/// around its routes (`surety bench` notes when each event arrives).
#[derive(Clone, Default)]
pub struct SimOptions {
    /// Count only: keep no request bodies (a long benchmark would hold them all).
    pub counting_only: bool,
    /// Wraps the simulator's routes before they are served.
    pub wrap: Option<Arc<dyn Fn(Router) -> Router + Send + Sync>>,
}

impl SimOptions {
    /// `router`, wrapped if asked.
    pub fn apply(&self, router: Router) -> Router {
        match &self.wrap {
            Some(wrap) => wrap(router),
            None => router,
        }
    }
}

/// Where a platform's requests name the conversions they carry: how such a request's path ends
/// (`/debug/…` paths excepted) and what precedes a conversion's number (the benchmark's order
/// number, or the Surety event id `order:N:…`) in its body.
#[derive(Clone, Copy, Debug)]
pub struct Marker {
    pub path: &'static str,
    pub key: &'static str,
}

impl Marker {
    /// Whether a request to `path` carries conversions.
    pub fn matches(&self, path: &str) -> bool {
        path.ends_with(self.path) && !path.starts_with("/debug/")
    }
}

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
