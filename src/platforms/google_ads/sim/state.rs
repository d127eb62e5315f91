//! What the Google Ads simulator keeps and how tests steer it: requests, accepted events, the
//! conversions as Google would hold them (one per conversion action and `transactionId`, a repeat
//! being an adjustment), issued tokens, request statuses, faults and quotas.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use crate::sim::{Fault, Faults};

/// Which endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Token,
    Ingest,
    Status,
}

/// One request as the simulator got it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub endpoint: Endpoint,
    /// The JSON body (ingest only; token forms hold assertions and are not kept).
    pub body: Option<Arc<Value>>,
    pub status: u16,
    /// The id an accepted ingest request was given.
    pub request_id: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// One event of an accepted request, for one of its destinations.
#[derive(Clone, Debug, PartialEq)]
pub struct ReceivedEvent {
    pub request_id: String,
    /// The destination's `productDestinationId`.
    pub conversion_action: String,
    /// The destination's `operatingAccount.accountId`.
    pub customer_id: String,
    pub login_customer_id: Option<String>,
    pub transaction_id: Option<String>,
    /// The event object as sent.
    pub event: Value,
    pub received_at: DateTime<Utc>,
}

/// A conversion as Google keeps it: the last value sent for its `transactionId` wins.
#[derive(Clone, Debug, PartialEq)]
pub struct Conversion {
    pub conversion_action: String,
    pub transaction_id: Option<String>,
    pub value: Option<f64>,
    pub currency: Option<String>,
    /// `eventTimestamp` of the first send.
    pub event_timestamp: Option<String>,
    pub has_user_data: bool,
    /// How many later sends restated it.
    pub adjustments: u32,
    /// Later sends refused as `DUPLICATE_TRANSACTION_ID`: another event restating the value and
    /// currency the conversion already had.
    pub duplicates: u32,
    /// The event object that last set the value (a byte-identical resend of it is idempotent).
    pub last_event: Value,
}

/// What `requestStatus:retrieve` reports once a request is processed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processing {
    Success,
    /// Error counts by reason (`EVENT_TOO_OLD`, or the full `PROCESSING_ERROR_REASON_…`).
    PartialSuccess(Vec<(String, i64)>),
    Failed(Vec<(String, i64)>),
}

pub(super) struct StatusEntry {
    /// Each destination as sent, with how many events went to it.
    pub destinations: Vec<(Value, i64)>,
    pub polls: u32,
    pub processing_polls: u32,
    pub outcome: Processing,
}

#[derive(Default)]
pub(super) struct Data {
    pub tokens: HashMap<String, DateTime<Utc>>,
    pub requests: Vec<ReceivedRequest>,
    pub events: Vec<ReceivedEvent>,
    pub conversions: Vec<Conversion>,
    /// (conversion action, transactionId) → index into `conversions`.
    pub conversion_index: HashMap<(String, String), usize>,
    pub statuses: HashMap<String, StatusEntry>,
    pub next_id: u64,
}

struct Quota {
    per_minute: Option<u32>,
    window_start: Instant,
    used: u32,
}

pub(super) struct Inner {
    pub key: DecodingKey,
    pub client_email: String,
    pub audience: Mutex<Option<String>>,
    pub data: Mutex<Data>,
    pub faults: Faults,
    pub token_refusal: Mutex<Option<String>>,
    pub token_lifetime_secs: AtomicI64,
    pub processing_polls: AtomicU32,
    pub processing: Mutex<Processing>,
    quota: Mutex<Quota>,
    pub not_recording: AtomicBool,
    pub grants: AtomicU64,
    pub accepted: AtomicU64,
    pub event_count: AtomicU64,
    pub faulted: AtomicU64,
    /// The operating accounts the service account may reach (`None`: any).
    pub accounts: Mutex<Option<Vec<String>>>,
}

/// The simulator's shared state. Cheap to clone.
#[derive(Clone)]
pub struct GoogleAdsSimState {
    pub(super) inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each update leaves the data whole: a panic elsewhere cannot leave it half-written.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GoogleAdsSimState {
    /// A simulator that trusts the service account `client_email` whose public key is `public_key_pem`.
    pub fn new(public_key_pem: &str, client_email: &str) -> Result<Self, jsonwebtoken::errors::Error> {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes())?;
        Ok(Self {
            inner: Arc::new(Inner {
                key,
                client_email: client_email.to_owned(),
                audience: Mutex::new(None),
                data: Mutex::new(Data::default()),
                faults: Faults::default(),
                token_refusal: Mutex::new(None),
                token_lifetime_secs: AtomicI64::new(3600),
                processing_polls: AtomicU32::new(1),
                processing: Mutex::new(Processing::Success),
                quota: Mutex::new(Quota { per_minute: None, window_start: Instant::now(), used: 0 }),
                not_recording: AtomicBool::new(false),
                grants: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                event_count: AtomicU64::new(0),
                faulted: AtomicU64::new(0),
                accounts: Mutex::new(None),
            }),
        })
    }

    /// The service account may reach only these operating accounts (ten digits): a request
    /// naming another is answered 403 `PERMISSION_DENIED`, validate-only or not.
    pub fn only_accounts(&self, accounts: &[&str]) {
        *lock(&self.inner.accounts) = Some(accounts.iter().map(|a| (*a).to_owned()).collect());
    }

    /// The operating account of a request's destinations that the service account may not
    /// reach, if any.
    pub(super) fn unreachable_account(&self, request: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
        let allowed = lock(&self.inner.accounts);
        let allowed = allowed.as_ref()?;
        let destinations = request.get("destinations").and_then(serde_json::Value::as_array)?;
        destinations
            .iter()
            .filter_map(|d| d.pointer("/operatingAccount/accountId").and_then(serde_json::Value::as_str))
            .find(|id| !allowed.iter().any(|a| a == id))
            .map(str::to_owned)
    }

    /// A simulator that trusts the committed test key (`TEST_SERVICE_ACCOUNT_JSON`).
    pub fn with_test_key() -> Self {
        Self::new(super::TEST_PUBLIC_KEY_PEM, super::TEST_CLIENT_EMAIL).expect("the committed test public key parses")
    }

    /// The `aud` assertions must name (the token URL); `None` accepts any URL ending `/token`.
    pub fn set_audience(&self, audience: Option<String>) {
        *lock(&self.inner.audience) = audience;
    }

    /// The next `n` API requests (ingest and status; not the token endpoint) meet `fault`.
    pub fn fail_next(&self, n: u32, fault: Fault) {
        self.inner.faults.fail_next(n, fault);
    }

    /// Every API request meets `fault` until it is set to `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.inner.faults.set(fault);
    }

    /// The token endpoint refuses every grant with this OAuth error (`invalid_grant`), or heals.
    pub fn refuse_tokens(&self, error: Option<&str>) {
        *lock(&self.inner.token_refusal) = error.map(str::to_owned);
    }

    /// How long tokens issued from now on live (`expires_in`).
    pub fn set_token_lifetime(&self, secs: i64) {
        self.inner.token_lifetime_secs.store(secs, Ordering::Relaxed);
    }

    /// The access tokens issued and not revoked (to check that none leaks into a record).
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.inner.data).tokens.keys().cloned().collect()
    }

    /// Forgets every issued token: requests bearing one get 401 `UNAUTHENTICATED`.
    pub fn revoke_tokens(&self) {
        lock(&self.inner.data).tokens.clear();
    }

    /// Answer 429 `RESOURCE_EXHAUSTED` beyond `n` API requests a minute; `None` lifts the quota.
    pub fn set_quota_per_minute(&self, n: Option<u32>) {
        let mut q = lock(&self.inner.quota);
        *q = Quota { per_minute: n, window_start: Instant::now(), used: 0 };
    }

    /// What requests accepted from now on report once processed.
    pub fn set_processing(&self, outcome: Processing) {
        *lock(&self.inner.processing) = outcome;
    }

    /// How many status retrievals answer `PROCESSING` before the outcome (default 1).
    pub fn set_processing_polls(&self, n: u32) {
        self.inner.processing_polls.store(n, Ordering::Relaxed);
    }

    /// Keep requests and events (the default), or only count them.
    pub fn set_recording(&self, on: bool) {
        self.inner.not_recording.store(!on, Ordering::Relaxed);
    }

    /// Tokens issued.
    pub fn token_grants(&self) -> u64 {
        self.inner.grants.load(Ordering::Relaxed)
    }

    /// Ingest requests accepted (200).
    pub fn accepted_requests(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// Events of accepted requests (per destination they went to).
    pub fn event_count(&self) -> u64 {
        self.inner.event_count.load(Ordering::Relaxed)
    }

    /// Requests answered with an injected fault.
    pub fn fault_count(&self) -> u64 {
        self.inner.faulted.load(Ordering::Relaxed)
    }

    /// Every recorded request, all endpoints, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        lock(&self.inner.data).requests.clone()
    }

    /// Recorded requests to one endpoint.
    pub fn requests_to(&self, endpoint: Endpoint) -> Vec<ReceivedRequest> {
        lock(&self.inner.data).requests.iter().filter(|r| r.endpoint == endpoint).cloned().collect()
    }

    /// Every event of the accepted requests, per destination, in arrival order.
    pub fn received_events(&self) -> Vec<ReceivedEvent> {
        lock(&self.inner.data).events.clone()
    }

    /// The conversions as Google would hold them, in order of first arrival.
    pub fn conversions(&self) -> Vec<Conversion> {
        lock(&self.inner.data).conversions.clone()
    }

    /// The conversion of `transaction_id` in `conversion_action`, if any.
    pub fn conversion(&self, conversion_action: &str, transaction_id: &str) -> Option<Conversion> {
        let data = lock(&self.inner.data);
        let key = (conversion_action.to_owned(), transaction_id.to_owned());
        data.conversion_index.get(&key).map(|&i| data.conversions[i].clone())
    }

    /// Forgets requests, events, conversions and statuses and resets the counters (tokens,
    /// faults and settings stay).
    pub fn clear(&self) {
        let mut data = lock(&self.inner.data);
        data.requests.clear();
        data.events.clear();
        data.conversions.clear();
        data.conversion_index.clear();
        data.statuses.clear();
        for c in [&self.inner.grants, &self.inner.accepted, &self.inner.event_count, &self.inner.faulted] {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub(super) fn data(&self) -> MutexGuard<'_, Data> {
        lock(&self.inner.data)
    }

    pub(super) fn audience(&self) -> Option<String> {
        lock(&self.inner.audience).clone()
    }

    pub(super) fn token_refusal(&self) -> Option<String> {
        lock(&self.inner.token_refusal).clone()
    }

    pub(super) fn processing(&self) -> Processing {
        lock(&self.inner.processing).clone()
    }

    /// Counts an API request against the quota; `false` if it is over.
    pub(super) fn within_quota(&self) -> bool {
        let mut q = lock(&self.inner.quota);
        let Some(limit) = q.per_minute else { return true };
        if q.window_start.elapsed().as_secs() >= 60 {
            q.window_start = Instant::now();
            q.used = 0;
        }
        q.used += 1;
        q.used <= limit
    }

    pub(super) fn record(&self, data: &mut Data, request: ReceivedRequest) {
        if !self.inner.not_recording.load(Ordering::Relaxed) {
            data.requests.push(request);
        }
    }
}
