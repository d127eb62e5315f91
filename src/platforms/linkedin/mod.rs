//! LinkedIn Conversions API: conversion elements, rules, `BATCH_CREATE` sending, and the reading
//! of per-element answers.
//!
//! Official pages: learn.microsoft.com/linkedin/marketing/integrations/ads-reporting/
//! conversions-api (streaming conversion events, batches, `eventId` deduplication), the
//! conversions FAQ, and …/shared/api-guide/concepts/error-handling and …/versioning
//! (`LinkedIn-Version`). Condensed in docs/platforms.md §LinkedIn.
//!
//! Unlike GA4, LinkedIn answers per element, so a 201 for an element is recorded as accepted.
//! Unconfirmed, and therefore configurable or only noted: the batch size limit (5,000 is what
//! third-party integrations use), the `eventId` dedupe window, the rate limits.

mod answer;
mod check;
pub mod config;
mod payload;
mod showcase;
pub mod sim;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{Datelike, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};

pub use self::answer::{element_index, ElementVerdict};
use self::config::{parse_version, LinkedinConfig, MAX_BATCH_SIZE, MAX_WINDOW_DAYS};
pub use self::payload::{batch_body, decimal_amount, element, event_id, ConversionElement, ID_TYPES};
pub use self::validate::{check_element, is_decimal};
use crate::config::SecretValue;
use crate::core::plan::{ConsentPolicy, Rules};
use crate::core::{Claimed, Event, Outcome, Route};
use crate::delivery::http;
use crate::delivery::{DeliveryOutcome, Destination, SendReport};

/// The path conversions are sent to, under `base_url`.
pub const PATH: &str = "/rest/conversionEvents";

/// The planning rules of one LinkedIn destination.
#[derive(Clone, Debug)]
pub struct LinkedinRules {
    window: chrono::Duration,
    dedupe_window: chrono::Duration,
    policy: ConsentPolicy,
}

impl LinkedinRules {
    pub fn new(config: &LinkedinConfig) -> Self {
        let days = config.window_days.clamp(1, MAX_WINDOW_DAYS);
        let consent = &config.common.consent;
        Self {
            window: chrono::Duration::days(i64::from(days)),
            dedupe_window: super::seconds(config.dedupe_window_secs),
            policy: consent.policy(),
        }
    }
}

impl Rules for LinkedinRules {
    fn window(&self) -> chrono::Duration {
        self.window
    }

    /// A hashed email (`SHA256_EMAIL`) or the `li_fat_id` click cookie. An IP address alone does
    /// not count, although LinkedIn takes it as an `idType`: addresses are shared (offices,
    /// carrier NAT) and change, so it would attach a conversion to whoever else used it — the
    /// orphan this check exists to prevent, turned into a wrong attribution. It is sent only
    /// beside one of the two.
    fn identity_ok(&self, event: &Event) -> bool {
        event.identity.email.is_some() || event.identity.li_fat_id.as_deref().is_some_and(|id| !id.trim().is_empty())
    }

    fn validate(&self, event: &Event, route: &Route, strip_personal: bool) -> Vec<String> {
        check_element(&element(event, route, strip_personal))
    }

    /// The Insight Tag and the Conversions API share `eventId`; LinkedIn keeps one.
    fn dedupes_with_browser(&self) -> bool {
        true
    }

    /// LinkedIn publishes no window for that dedupe: `dedupe_window_secs`, a conservative 24 h
    /// unless configured.
    fn browser_dedupe_window(&self) -> Option<chrono::Duration> {
        Some(self.dedupe_window)
    }

    /// Every element carries a fixed `eventId`, and LinkedIn dedupes on it. The window of that
    /// dedupe is not published.
    fn dedupes_resend(&self, _event: &Event, _route: &Route) -> bool {
        true
    }

    fn consent_policy(&self) -> &ConsentPolicy {
        &self.policy
    }
}

/// One configured LinkedIn destination.
///
/// Deliberately not `Debug`: its client carries the access token in a default header (marked
/// sensitive, so reqwest does not print it either).
pub struct Linkedin {
    name: String,
    rules: Arc<LinkedinRules>,
    client: reqwest::Client,
    url: String,
    /// The same headers without the batch method, for `GET /rest/conversions/{id}` (`check`).
    lookup: reqwest::Client,
    /// `{base_url}/rest/conversions/`.
    rules_url: String,
    batch_size: usize,
    concurrency: usize,
}

impl Linkedin {
    /// Resolves the access token and prepares the client.
    pub fn new(config: &LinkedinConfig) -> anyhow::Result<Self> {
        let key = |k: &str| format!("destinations.{}.{k}", config.name);
        let token = config
            .access_token
            .resolve()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{} ({})", key("access_token"), config.access_token.reference()))?;
        let (year, month) = parse_version(&config.linkedin_version)
            .map_err(anyhow::Error::msg)
            .with_context(|| key("linkedin_version"))?;
        let now = Utc::now();
        let age_months = (now.year() * 12 + now.month() as i32) - (year as i32 * 12 + month as i32);
        if age_months >= 12 {
            tracing::warn!(destination = %config.name, version = %config.linkedin_version,
                "LinkedIn retires API versions after about a year: raise linkedin_version before requests fail with 426");
        }
        let base = config.base_url.trim_end_matches('/');
        let url = url::Url::parse(&format!("{base}{PATH}"))
            .with_context(|| format!("{}: '{}' is not a URL", key("base_url"), config.base_url))?;
        let timeout = Duration::from_millis(config.common.timeout_ms);
        Ok(Self {
            name: config.name.clone(),
            rules: Arc::new(LinkedinRules::new(config)),
            client: client(timeout, &token, &config.linkedin_version, Some("BATCH_CREATE"))
                .with_context(|| key("access_token"))?,
            url: url.into(),
            lookup: client(timeout, &token, &config.linkedin_version, None).with_context(|| key("access_token"))?,
            rules_url: format!("{base}{}", check::RULES_PATH),
            batch_size: config.batch_size.clamp(1, MAX_BATCH_SIZE),
            concurrency: config.common.concurrency.max(1),
        })
    }

    async fn do_send(&self, batch: &[Claimed]) -> SendReport {
        let mut report = SendReport::default();
        let live: Vec<(&Claimed, ConversionElement)> =
            batch.iter().map(|c| (c, ConversionElement::new(&c.event, &c.route, c.strip_personal))).collect();
        for chunk in live.chunks(self.batch_size) {
            self.send_chunk(chunk, &mut report).await;
        }
        report
    }

    /// Sends one request; when LinkedIn refuses it for some elements only, sends the others
    /// once more at once, so that they do not wait a backoff for someone else's error.
    async fn send_chunk(&self, chunk: &[(&Claimed, ConversionElement)], report: &mut SendReport) {
        let mut round: Vec<usize> = (0..chunk.len()).collect();
        let mut resent = false;
        while !round.is_empty() {
            let parts: Vec<&ConversionElement> = round.iter().map(|&i| &chunk[i].1).collect();
            let exchange = http::post_json(&self.client, "conversionEvents", &self.url, batch_body(&parts)).await;
            tracing::debug!(destination = %self.name, conversions = round.len(), status = ?exchange.status(),
                duration_ms = exchange.record.duration.as_millis() as u64, "LinkedIn BATCH_CREATE");
            let request = report.requests.len();
            let mut innocent = Vec::new();
            for (&i, verdict) in round.iter().zip(answer::read(&exchange, round.len())) {
                let outcome = match verdict {
                    ElementVerdict::Final(outcome) => outcome,
                    ElementVerdict::Innocent if !resent => {
                        innocent.push(i);
                        continue;
                    }
                    ElementVerdict::Innocent => Outcome::retry(answer::NOT_PROCESSED, exchange.retry_after),
                };
                let (c, p) = &chunk[i];
                report.outcomes.push(DeliveryOutcome {
                    delivery_id: c.delivery_id,
                    outcome,
                    payload_sha256: Some(p.element_sha256.clone()),
                    request: Some(request),
                });
            }
            report.requests.push(exchange.record);
            round = innocent;
            resent = true;
        }
    }
}

/// A client like [`http::client`] that sends LinkedIn's headers with every request: the token,
/// the version, the Rest.li protocol and the Rest.li method, if any.
fn client(
    timeout: Duration,
    token: &SecretValue,
    version: &str,
    method: Option<&'static str>,
) -> anyhow::Result<reqwest::Client> {
    let mut headers = HeaderMap::new();
    // The error names no value: a token with characters a header cannot carry is reported as such.
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| anyhow::anyhow!("the access token holds characters an HTTP header cannot carry"))?;
    auth.set_sensitive(true);
    headers.insert(AUTHORIZATION, auth);
    headers.insert(HeaderName::from_static("linkedin-version"), HeaderValue::from_str(version)?);
    headers.insert(HeaderName::from_static("x-restli-protocol-version"), HeaderValue::from_static("2.0.0"));
    if let Some(method) = method {
        headers.insert(HeaderName::from_static("x-restli-method"), HeaderValue::from_static(method));
    }
    Ok(reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(128)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        // As in `http::client`: a redirected POST may come back as a GET whose 2xx would pass for a delivery.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("surety/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .build()?)
}

impl Destination for Linkedin {
    fn name(&self) -> &str {
        &self.name
    }

    fn rules(&self) -> Arc<dyn Rules> {
        self.rules.clone()
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Elements are independent: any deliveries may share a request, in order, up to `batch_size`.
    fn batches(&self, claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
        let mut batches = Vec::new();
        let mut rest = claimed.into_iter().peekable();
        while rest.peek().is_some() {
            batches.push(rest.by_ref().take(self.batch_size).collect());
        }
        batches
    }

    /// LinkedIn has no validation endpoint: planning's checks are the preflight.
    fn preflight<'a>(&'a self, _batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        futures::future::ready(SendReport::default()).boxed()
    }

    fn send<'a>(&'a self, batch: &'a [Claimed], _validated: &'a [i64]) -> BoxFuture<'a, SendReport> {
        self.do_send(batch).boxed()
    }

    fn check<'a>(&'a self, routes: &'a [Route]) -> BoxFuture<'a, Vec<crate::delivery::Check>> {
        self.do_check(routes).boxed()
    }

    /// LinkedIn documents no validation route for conversions: built and checked locally.
    fn validate_only<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        let report = crate::delivery::validate_mode::locally(self.rules.as_ref(), batch, check::NO_VALIDATION_ROUTE);
        futures::future::ready(report).boxed()
    }
}

impl super::Platform for Linkedin {
    const TYPE: &'static str = "linkedin";
    const LABEL: &'static str = "LinkedIn";
    const SHOWCASE: super::Showcase = showcase::SHOWCASE;
    const READ_BACK: super::ReadBack = super::ReadBack::File(
        "LinkedIn has no API that lists the conversions it counted (its reporting API gives campaign \
         aggregates only): export Campaign Manager's conversion report and pass it as --platform DEST=FILE",
    );
    type Config = LinkedinConfig;

    fn rules(config: &LinkedinConfig) -> Arc<dyn Rules> {
        Arc::new(LinkedinRules::new(config))
    }

    fn destination(config: &LinkedinConfig) -> anyhow::Result<Arc<dyn Destination>> {
        Ok(Arc::new(Self::new(config)?))
    }

    fn report_id(event: &crate::core::Event) -> Option<String> {
        Some(event.event_id.as_str().to_owned())
    }

    fn simulate(options: super::SimOptions) -> super::Starting {
        showcase::simulate(options)
    }
}
