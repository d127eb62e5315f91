//! Google Ads conversions through the Data Manager API (`type = "google_ads"`): OAuth with a
//! service-account key, payloads, rules, batching by conversion action, sending with fast-fail
//! isolation, the reading of answers, and the later processing-status check.
//!
//! Official pages: developers.google.com/data-manager/api — reference (`events:ingest`,
//! `requestStatus:retrieve`), devguides (offline conversions, conversion adjustments, formatting,
//! limits, understand-errors, diagnostics); the protos under `google/ads/datamanager/v1/` in
//! googleapis/googleapis; developers.google.com/identity/protocols/oauth2/service-account.
//! Condensed in docs/platforms.md §Google Ads.
//!
//! A 200 means "accepted for processing", not "processed": deliveries end `delivered` with
//! `accepted: false` and the `requestId`; [`GoogleAds::check_status`] later asks what Google kept.
//! A request id Google will not answer for (`INVALID_REQUEST_ID`, `NOT_FOUND`) ends the follow-up
//! as [`FollowUp::Unconfirmed`]; so does silence past [`crate::delivery::FOLLOW_UP_GIVE_UP_AFTER`]
//! (the worker's follow-up loop): the deliveries stay delivered, reason `processing_unknown`.
//!
//! How answers become outcomes:
//! - 400 `INVALID_ARGUMENT` naming events (`events[N]…`, or `destinations[K]…` for all events of
//!   that conversion action): those are rejected with the violations; the rest are resent at
//!   once (fast-fail fails the whole request for one record). A 400 naming none rejects all.
//! - 401 `UNAUTHENTICATED`: the token is renewed and the request resent once; a second 401 is a
//!   halt (`Outcome::Halt`: the worker stops the destination).
//! - 403 `PERMISSION_DENIED`, 404, `FAILED_PRECONDITION`: a halt, not a rejection — they
//!   are about the account, the service account's access or the terms, not the events, and the
//!   events are good once a person fixes that.
//! - 429 `RESOURCE_EXHAUSTED`: retry no sooner than `Retry-After` or 60 s, and hold every send of
//!   this destination meanwhile. `UNAVAILABLE`, `DEADLINE_EXCEEDED`, other 5xx, 408, 409, network
//!   errors, timeouts: retry.
//! - A token grant refused (`invalid_grant`, …): a halt; the token endpoint unreachable: retry.

mod answer;
mod batch;
mod check;
pub mod config;
mod pace;
mod payload;
mod restate;
mod rules;
mod send;
mod showcase;
pub mod sim;

pub use self::showcase::{LEAD_ACTION, PURCHASE_ACTION};
mod status;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

pub use self::answer::{request_id, FieldViolation, RequestVerdict, RpcStatus, SLOW_DOWN};
use self::config::{customer_id, GoogleAdsConfig};
use self::pace::Pace;
pub use self::payload::{
    rfc3339, transaction_id, Accounts, IngestEvent, Restatement, Shape, CONVERSION_OCCURRED_AT, RESTATED_VALUE,
};
pub use self::restate::restate;
pub use self::rules::{has_identity, GoogleAdsRules};
pub use self::status::{
    follow_up, parse_status, DestinationStatus, ProcessingState, ReasonCount, StatusCheck, StatusError,
};
pub use self::validate::{check_body, check_event, MAX_DESTINATIONS, MAX_EVENTS, MAX_USER_IDENTIFIERS};
use crate::core::plan::Rules;
use crate::core::Claimed;
use crate::core::FollowUp;
use crate::delivery::{Destination, SendReport};
use crate::platforms::google_auth::TokenSource;
pub use crate::platforms::google_auth::{KeyError, ServiceAccount, TokenError};
use crate::store::Store;

/// What the adapter reads the time from: the access token's lifetime.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// One Google Ads account (operating customer) and every conversion action routed to it.
///
/// Deliberately not `Debug`: it holds the service account's signing key and access tokens.
pub struct GoogleAds {
    name: String,
    rules: Arc<GoogleAdsRules>,
    accounts: Accounts,
    client: reqwest::Client,
    ingest_url: String,
    status_url: url::Url,
    tokens: TokenSource,
    pace: Pace,
    batch_size: usize,
    concurrency: usize,
    status_poll_delay: Duration,
    clock: Clock,
    /// Where an adjustment's restated value is computed from (`attach_ledger`); without one, an
    /// adjustment that states no `restated_value` retracts as configured.
    ledger: OnceLock<Arc<dyn Store>>,
}

impl GoogleAds {
    /// Resolves and parses the service-account key and prepares the client. No request is made.
    pub fn new(config: &GoogleAdsConfig) -> anyhow::Result<Self> {
        let n = &config.name;
        let reference = config.service_account_key.reference();
        let key = config
            .service_account_key
            .resolve()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("destinations.{n}.service_account_key ({reference})"))?;
        let account = ServiceAccount::from_json(key.expose(), config::SCOPE)
            .with_context(|| format!("destinations.{n}.service_account_key ({reference})"))?;
        let customer = customer_id(&config.customer_id)
            .with_context(|| format!("destinations.{n}.customer_id: not a ten-digit customer id"))?;
        let login = match &config.login_customer_id {
            Some(l) => Some(
                customer_id(l)
                    .with_context(|| format!("destinations.{n}.login_customer_id: not a ten-digit customer id"))?,
            ),
            None => None,
        };
        let base = config.base_url.trim_end_matches('/');
        let parse = |text: String, key: &str| {
            url::Url::parse(&text).with_context(|| format!("destinations.{n}.{key}: '{text}' is not a URL"))
        };
        let ingest_url = parse(format!("{base}/v1/events:ingest"), "base_url")?.to_string();
        let status_url = parse(format!("{base}/v1/requestStatus:retrieve"), "base_url")?;
        parse(config.token_url.clone(), "token_url")?;
        let client = crate::delivery::http::client(Duration::from_millis(config.common.timeout_ms));
        Ok(Self {
            name: config.name.clone(),
            rules: Arc::new(GoogleAdsRules::new(config)),
            accounts: Accounts { customer_id: customer, login_customer_id: login },
            tokens: TokenSource::new(account, config.token_url.clone(), client.clone()),
            client,
            ingest_url,
            status_url,
            pace: Pace::per_minute(config.requests_per_minute()),
            batch_size: config.batch_size.clamp(1, MAX_EVENTS),
            concurrency: config.common.concurrency.max(1),
            status_poll_delay: Duration::from_secs(config.status_poll_delay_secs),
            clock: Arc::new(Utc::now),
            ledger: OnceLock::new(),
        })
    }

    /// Reads the time from `clock` instead of the system clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Computes adjustments' restated values from `ledger` (tests; the server calls `attach_ledger`).
    pub fn with_ledger(self, ledger: Arc<dyn Store>) -> Self {
        let _ = self.ledger.set(ledger);
        self
    }

    /// How long after a send its processing status is worth asking for.
    pub fn status_poll_delay(&self) -> Duration {
        self.status_poll_delay
    }

    pub(super) fn prepare(&self, c: &Claimed) -> IngestEvent {
        IngestEvent::new(&c.event, &c.route, c.strip_personal, self.rules.shape())
    }
}

impl Destination for GoogleAds {
    fn name(&self) -> &str {
        &self.name
    }

    fn rules(&self) -> Arc<dyn Rules> {
        self.rules.clone()
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn attach_ledger(&self, ledger: Arc<dyn Store>) {
        let _ = self.ledger.set(ledger);
    }

    fn batches(&self, claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
        let parts: Vec<IngestEvent> = claimed.iter().map(|c| self.prepare(c)).collect();
        let plan = batch::split(&parts, self.batch_size);
        batch::distribute(claimed, &plan)
    }

    /// Nothing to check before sending: planning validated every event by Google's rules.
    fn preflight<'a>(&'a self, _batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        async { SendReport::default() }.boxed()
    }

    fn send<'a>(&'a self, batch: &'a [Claimed], _validated: &'a [i64]) -> BoxFuture<'a, SendReport> {
        self.do_send(batch).boxed()
    }

    /// Google processes an accepted request within about 30 minutes (`status_poll_delay_secs`).
    fn follow_up_after(&self) -> Option<Duration> {
        Some(self.status_poll_delay)
    }

    fn follow_up<'a>(&'a self, platform_request_id: &'a str) -> BoxFuture<'a, FollowUp> {
        async move { status::follow_up(&self.check_status(platform_request_id).await) }.boxed()
    }

    fn check<'a>(&'a self, routes: &'a [crate::core::Route]) -> BoxFuture<'a, Vec<crate::delivery::Check>> {
        self.do_check(routes).boxed()
    }

    fn validate_only<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        self.do_validate_only(batch).boxed()
    }
}

impl super::Platform for GoogleAds {
    const TYPE: &'static str = "google_ads";
    const LABEL: &'static str = "Google Ads";
    const SHOWCASE: super::Showcase = showcase::SHOWCASE;
    /// `requestStatus:retrieve` says per request whether Google kept the conversions.
    const READ_BACK: super::ReadBack = super::ReadBack::FollowUps;
    const REPORTS_ROUTE_EVENT: bool = false;
    type Config = GoogleAdsConfig;

    fn rules(config: &GoogleAdsConfig) -> Arc<dyn Rules> {
        Arc::new(GoogleAdsRules::new(config))
    }

    fn destination(config: &GoogleAdsConfig) -> anyhow::Result<Arc<dyn Destination>> {
        Ok(Arc::new(Self::new(config)?))
    }

    fn report_id(event: &crate::core::Event) -> Option<String> {
        Some(transaction_id(event))
    }

    fn simulate(options: super::SimOptions) -> super::Starting {
        showcase::simulate(options)
    }
}
