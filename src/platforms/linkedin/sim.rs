//! A LinkedIn Conversions API stand-in: `POST /rest/conversionEvents`, single create or
//! `BATCH_CREATE`, with LinkedIn's headers, answers and ways of failing, implemented here on their
//! own (not the adapter's) so that adapter bugs show.
//!
//! Source of the behaviour: learn.microsoft.com/linkedin/marketing/integrations/ads-reporting/
//! conversions-api, …/shared/api-guide/concepts/error-handling and …/versioning; docs/platforms.md
//! §LinkedIn. Its choices where the docs are silent:
//! - No `Authorization: Bearer` → 401; a token other than the one set → 401; "expired" mode →
//!   401 for every request. Errors are `{"message", "serviceErrorCode", "status"}`.
//! - No `LinkedIn-Version` → 400 (`VERSION_MISSING`); a malformed one or one older than the oldest
//!   active version → 426 (`NONEXISTENT_VERSION`), LinkedIn's answer to a retired version.
//! - `X-Restli-Protocol-Version` other than `2.0.0` → 400.
//! - A batch with a schema violation in any element → 422 for the whole request, every violation
//!   listed as `ERROR :: /elements/N/path :: why`; nothing kept. Otherwise each element is judged
//!   on its values and answers its own status: 201 (kept) or 422 with an `error`.
//! - More than 5,000 elements (configurable; LinkedIn's limit is unpublished) → 400.
//! - A request quota (throttling) → 429 without `Retry-After`, as LinkedIn publishes none.
//! - `GET /rest/conversions/{id}` looks up a conversion rule behind the same gates (token, version,
//!   quota): 200 with the rule, 403 for a rule of another ad account, 404 for none; nothing counted.
//! - Kept conversions are listed as received; [`LinkedinSimState::unique_conversions`] is what
//!   LinkedIn would count after deduplicating on (`conversion`, `eventId`).

mod handle;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use self::validate::{schema, values, Violation, ID_TYPES, WINDOW_DAYS};
use crate::sim::{Fault, Faults};

/// Most elements in one `BATCH_CREATE`, unless changed with [`LinkedinSimState::set_max_batch`].
pub const DEFAULT_MAX_BATCH: usize = 5_000;

/// The oldest `LinkedIn-Version` answered, unless changed with [`LinkedinSimState::retire_versions_before`].
pub const DEFAULT_OLDEST_VERSION: &str = "202401";

/// One request as the simulator got it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// The `Authorization` header as sent (a test double may keep it: tests check it was sent).
    pub authorization: Option<String>,
    pub linkedin_version: Option<String>,
    pub protocol_version: Option<String>,
    /// `X-RestLi-Method`; `None` for a single create.
    pub method: Option<String>,
    pub body: Option<Arc<Value>>,
    pub received_at: DateTime<Utc>,
    /// What the simulator answered.
    pub status: u16,
    /// The status of each element of a batch that got per-element answers.
    pub element_statuses: Vec<u16>,
}

/// One conversion LinkedIn kept (answered 201).
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedConversion {
    pub conversion: String,
    pub conversion_happened_at: i64,
    pub event_id: Option<String>,
    /// `conversionValue` as sent.
    pub value: Option<Value>,
    /// `(idType, idValue)` pairs.
    pub user_ids: Vec<(String, String)>,
    pub user_info: Option<Value>,
    /// The element as sent.
    pub element: Value,
    pub received_at: DateTime<Utc>,
}

/// The simulator's shared state: what it received, its counters, its modes and faults. Cheap to clone.
#[derive(Clone, Default)]
pub struct LinkedinSimState {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    requests: Mutex<Vec<ReceivedRequest>>,
    conversions: Mutex<Vec<ReceivedConversion>>,
    settings: Mutex<Settings>,
    not_recording: AtomicBool,
    processed: AtomicU64,
    accepted: AtomicU64,
    faulted: AtomicU64,
    throttled: AtomicU64,
    faults: Faults,
}

#[derive(Default)]
struct Settings {
    /// `None`: any non-empty bearer token is accepted.
    token: Option<String>,
    token_expired: bool,
    /// `None`: [`DEFAULT_OLDEST_VERSION`].
    oldest_version: Option<String>,
    /// `None`: [`DEFAULT_MAX_BATCH`].
    max_batch: Option<usize>,
    /// Requests still allowed before throttling; `None`: unlimited.
    quota: Option<u64>,
    /// The next `n` elements that pass validation answer this status instead of 201.
    element_fault: Option<(u32, u16)>,
    /// Conversion rule id → its access (`None`: any numeric id is an enabled rule).
    rules: Option<std::collections::BTreeMap<String, RuleAccess>>,
}

/// How the simulated token sees a conversion rule (`GET /rest/conversions/{id}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleAccess {
    Enabled,
    Disabled,
    /// The rule belongs to an ad account the token has no role on: 403.
    Forbidden,
}

impl LinkedinSimState {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` requests meet `fault`.
    pub fn fail_next(&self, n: u32, fault: Fault) {
        self.inner.faults.fail_next(n, fault);
    }

    /// Every request meets `fault` until it is set to `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.inner.faults.set(fault);
    }

    /// The next `n` valid elements answer `status` (a per-element 500 or 429) and are not kept.
    pub fn fail_next_elements(&self, n: u32, status: u16) {
        self.settings().element_fault = (n > 0).then_some((n, status));
    }

    /// Accept only this bearer token (`None`: any non-empty one).
    pub fn set_access_token(&self, token: Option<&str>) {
        self.settings().token = token.map(str::to_owned);
    }

    /// While on, every request answers 401 as for an expired token.
    pub fn set_token_expired(&self, expired: bool) {
        self.settings().token_expired = expired;
    }

    /// Versions older than `version` (`YYYYMM`) answer 426.
    pub fn retire_versions_before(&self, version: &str) {
        self.settings().oldest_version = Some(version.to_owned());
    }

    pub fn set_max_batch(&self, max: usize) {
        self.settings().max_batch = Some(max);
    }

    /// After `n` more requests, answer 429 until the quota is lifted (`None`).
    pub fn set_request_quota(&self, n: Option<u64>) {
        self.settings().quota = n;
    }

    /// Only these conversion rules exist (others answer 404 to a lookup).
    pub fn set_conversion_rules(&self, rules: &[(&str, RuleAccess)]) {
        self.settings().rules = Some(rules.iter().map(|(id, a)| ((*id).to_owned(), *a)).collect());
    }

    /// Keep requests and conversions (the default), or only count them.
    pub fn set_recording(&self, on: bool) {
        self.inner.not_recording.store(!on, Ordering::Relaxed);
    }

    /// Requests that passed authentication, version and quota checks (faulted ones excluded).
    pub fn request_count(&self) -> u64 {
        self.inner.processed.load(Ordering::Relaxed)
    }

    /// Conversions kept (answered 201), duplicates included.
    pub fn conversion_count(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Requests answered with an injected fault.
    pub fn fault_count(&self) -> u64 {
        self.inner.faulted.load(Ordering::Relaxed)
    }

    /// Requests answered 429 by the quota.
    pub fn throttled_count(&self) -> u64 {
        self.inner.throttled.load(Ordering::Relaxed)
    }

    /// Every recorded request, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.inner.requests).clone()
    }

    /// Every kept conversion, in arrival order, duplicates included.
    pub fn received_conversions(&self) -> Vec<ReceivedConversion> {
        lock(&self.inner.conversions).clone()
    }

    /// What LinkedIn would count: the first of each (`conversion`, `eventId`); a conversion
    /// without `eventId` cannot be deduplicated and always counts.
    pub fn unique_conversions(&self) -> Vec<ReceivedConversion> {
        let mut seen = HashSet::new();
        lock(&self.inner.conversions)
            .iter()
            .filter(|c| c.event_id.as_ref().is_none_or(|id| seen.insert((c.conversion.clone(), id.clone()))))
            .cloned()
            .collect()
    }

    /// Forgets what was recorded and resets the counters (modes and faults stay).
    pub fn clear(&self) {
        lock(&self.inner.requests).clear();
        lock(&self.inner.conversions).clear();
        for c in [&self.inner.processed, &self.inner.accepted, &self.inner.faulted, &self.inner.throttled] {
            c.store(0, Ordering::Relaxed);
        }
    }

    fn settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        lock(&self.inner.settings)
    }

    fn recording(&self) -> bool {
        !self.inner.not_recording.load(Ordering::Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain data, appended or overwritten whole: a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The simulator's routes, to serve on their own ([`start`]) or mount elsewhere.
pub fn router(state: LinkedinSimState) -> Router {
    Router::new()
        .route("/rest/conversionEvents", post(handle::conversion_events))
        .route("/rest/conversions/{id}", axum::routing::get(handle::conversion_rule))
        .layer(DefaultBodyLimit::max(64 << 20))
        .with_state(state)
}

/// A LinkedIn simulator serving on 127.0.0.1 (see [`crate::sim::Running`]).
pub type LinkedinSim = crate::sim::Running<LinkedinSimState>;

/// Binds 127.0.0.1 on a free port and serves the simulator until [`crate::sim::Running::shutdown`].
pub async fn start() -> std::io::Result<LinkedinSim> {
    let state = LinkedinSimState::new();
    crate::sim::serve(state.clone(), router(state), "LinkedIn").await
}
