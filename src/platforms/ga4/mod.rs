//! GA4 Measurement Protocol: payloads, rules, batching, the optional debug-endpoint preflight,
//! and the reading of answers.
//!
//! Official pages: developers.google.com/analytics/devguides/collection/protocol/ga4 —
//! `reference` (body, limits, reserved names), `sending-events` (hosts, `timestamp_micros`,
//! session stitching), `validating-events` (`/debug/mp/collect` and its messages), `uid-data`
//! (user-provided data); support.google.com/analytics/answer/9267744 (limits) and /12313109
//! (transaction id dedupe). Condensed in docs/platforms.md §GA4.
//!
//! Production answers 2xx to anything, so a 2xx means "sent", not "accepted": acceptance is
//! claimed only for events the debug endpoint validated just before the send.

mod batch;
mod check;
pub mod config;
mod data_api;
mod payload;
mod showcase;
pub mod sim;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::future::BoxFuture;
use futures::FutureExt;
use serde::Deserialize;

use self::config::Ga4Config;
pub use self::payload::{transaction_id, Ga4Event, MAX_BODY_BYTES};
pub use self::validate::{check_body, check_request};
use crate::core::delivery::reason;
use crate::core::plan::{ConsentPolicy, Rules};
use crate::core::{Claimed, Event, Outcome, Route};
use crate::delivery::http::{self, Exchange, StatusClass};
use crate::delivery::{DeliveryOutcome, Destination, SendReport};

/// GA4 backdates events up to 72 hours, and no further.
pub const MAX_WINDOW_HOURS: u32 = 72;

const SENT_DETAIL: &str = "sent: GA4 answers 2xx to any payload";
const VALIDATED_DETAIL: &str = "validated by /debug/mp/collect, then sent (GA4 answered 2xx)";
/// GA4 ends a session after 30 minutes without activity.
pub const SESSION_TIMEOUT_SECS: i64 = 30 * 60;

/// Seconds from the stitched browser session's start to `sent_at`: gtag's `session_id` is the
/// session's start in Unix seconds. Past [`SESSION_TIMEOUT_SECS`] the session has likely closed
/// (unless the visitor stayed active), and GA4 may count the event in a new one.
pub fn session_age_secs(event: &Event, sent_at: chrono::DateTime<Utc>) -> Option<i64> {
    let start: i64 = event.identity.session_id.as_deref()?.parse().ok()?;
    Some(sent_at.timestamp() - start)
}

/// A delivered attempt's detail, with the session's age at the send (shown in the timeline).
fn delivered_detail(base: &str, event: &Event, sent_at: chrono::DateTime<Utc>) -> String {
    match session_age_secs(event, sent_at) {
        Some(age) if age > SESSION_TIMEOUT_SECS => {
            format!("{base}; session_age_secs={age} (past GA4's 30-minute session timeout)")
        }
        Some(age) => format!("{base}; session_age_secs={age}"),
        None => base.to_owned(),
    }
}

/// The planning rules of one GA4 destination.
#[derive(Clone, Debug)]
pub struct Ga4Rules {
    window: chrono::Duration,
    policy: ConsentPolicy,
}

impl Ga4Rules {
    pub fn new(config: &Ga4Config) -> Self {
        let hours = config.window_hours.min(MAX_WINDOW_HOURS);
        let consent = &config.common.consent;
        Self { window: chrono::Duration::hours(i64::from(hours)), policy: consent.policy() }
    }
}

impl Rules for Ga4Rules {
    fn window(&self) -> chrono::Duration {
        self.window
    }

    fn identity_ok(&self, event: &Event) -> bool {
        event.identity.client_id.as_deref().is_some_and(|c| !c.trim().is_empty())
    }

    fn validate(&self, event: &Event, route: &Route, strip_personal: bool) -> Vec<String> {
        let prepared = Ga4Event::new(event, route, strip_personal);
        check_body(&payload::request_body(&[&prepared], false))
    }

    fn dedupes_with_browser(&self) -> bool {
        false
    }

    fn dedupes_resend(&self, event: &Event, route: &Route) -> bool {
        route.event == "purchase" && transaction_id(event).is_some()
    }

    fn consent_policy(&self) -> &ConsentPolicy {
        &self.policy
    }
}

/// One configured GA4 web stream.
///
/// Deliberately not `Debug`: the request URLs carry the `api_secret`.
pub struct Ga4 {
    name: String,
    rules: Arc<Ga4Rules>,
    client: reqwest::Client,
    collect_url: String,
    debug_url: String,
    batch_size: usize,
    concurrency: usize,
    preflight_enabled: bool,
}

impl Ga4 {
    /// Resolves the `api_secret` and prepares the client.
    pub fn new(config: &Ga4Config) -> anyhow::Result<Self> {
        let secret =
            config.api_secret.resolve().map_err(anyhow::Error::msg).with_context(|| {
                format!("destinations.{}.api_secret ({})", config.name, config.api_secret.reference())
            })?;
        let url = |path: &str| -> anyhow::Result<String> {
            let base = config.base_url.trim_end_matches('/');
            let mut url = url::Url::parse(&format!("{base}{path}")).with_context(|| {
                format!("destinations.{}.base_url: '{}' is not a URL", config.name, config.base_url)
            })?;
            url.query_pairs_mut()
                .append_pair("measurement_id", &config.measurement_id)
                .append_pair("api_secret", secret.expose());
            Ok(url.into())
        };
        Ok(Self {
            name: config.name.clone(),
            rules: Arc::new(Ga4Rules::new(config)),
            client: http::client(Duration::from_millis(config.common.timeout_ms)),
            collect_url: url("/mp/collect")?,
            debug_url: url("/debug/mp/collect")?,
            batch_size: config.batch_size.clamp(1, validate::MAX_EVENTS),
            concurrency: config.common.concurrency.max(1),
            preflight_enabled: config.validate_with_debug_endpoint,
        })
    }

    /// Each delivery's part of a request. (The worker has ended, just before, any whose window
    /// closed while they waited: `worker::end_unsendable`.)
    fn parts<'a>(&self, batch: &'a [Claimed]) -> (Vec<&'a Claimed>, Vec<Ga4Event>) {
        batch.iter().map(|c| (c, Ga4Event::new(&c.event, &c.route, c.strip_personal))).unzip()
    }

    async fn do_send(&self, batch: &[Claimed], validated: &[i64]) -> SendReport {
        let mut report = SendReport::default();
        let (live, parts) = self.parts(batch);
        for group in batch::split(&parts, self.batch_size) {
            let members: Vec<&Ga4Event> = group.iter().map(|&i| &parts[i]).collect();
            let body = payload::request_body(&members, false);
            let sent_at = Utc::now();
            let exchange = http::post_json(&self.client, "collect", &self.collect_url, body).await;
            tracing::debug!(destination = %self.name, events = group.len(), status = ?exchange.status(),
                duration_ms = exchange.record.duration.as_millis() as u64, "GA4 collect");
            let request = report.requests.len();
            let class = exchange.status_class();
            for &i in &group {
                let (c, p) = (live[i], &parts[i]);
                let outcome = match &class {
                    StatusClass::Success => {
                        let accepted = validated.contains(&c.delivery_id);
                        let detail = if accepted { VALIDATED_DETAIL } else { SENT_DETAIL };
                        Outcome::Delivered { accepted, detail: Some(delivered_detail(detail, &c.event, sent_at)) }
                    }
                    other => failure(other, &exchange),
                };
                report.outcomes.push(result(c, p, outcome, request));
            }
            report.requests.push(exchange.record);
        }
        report
    }

    async fn do_preflight(&self, batch: &[Claimed]) -> SendReport {
        if !self.preflight_enabled {
            return SendReport::default();
        }
        self.debug_check(batch).await
    }

    /// Each batch to `/debug/mp/collect`: the refused with their outcome, the rest `validated`.
    async fn debug_check(&self, batch: &[Claimed]) -> SendReport {
        let mut report = SendReport::default();
        let (live, parts) = self.parts(batch);
        for group in batch::split(&parts, self.batch_size) {
            let members: Vec<&Ga4Event> = group.iter().map(|&i| &parts[i]).collect();
            let body = payload::request_body(&members, true);
            let exchange = http::post_json(&self.client, "debug", &self.debug_url, body).await;
            let request = report.requests.len();
            let verdicts = match exchange.status_class() {
                StatusClass::Success => read_validation(&exchange, group.len()),
                other => vec![Some(failure(&other, &exchange)); group.len()],
            };
            for (&i, verdict) in group.iter().zip(verdicts) {
                let (c, p) = (live[i], &parts[i]);
                match verdict {
                    Some(outcome) => report.outcomes.push(result(c, p, outcome, request)),
                    None => report.validated.push(c.delivery_id),
                }
            }
            report.requests.push(exchange.record);
        }
        report
    }
}

fn result(c: &Claimed, p: &Ga4Event, outcome: Outcome, request: usize) -> DeliveryOutcome {
    DeliveryOutcome {
        delivery_id: c.delivery_id,
        outcome,
        payload_sha256: Some(p.event_sha256.clone()),
        request: Some(request),
    }
}

/// A non-2xx answer (or none) as the outcome of every delivery of the request.
fn failure(class: &StatusClass, exchange: &Exchange) -> Outcome {
    let reason = match class {
        StatusClass::Permanent { status } => {
            return Outcome::Rejected {
                reason: reason::PLATFORM_REJECTED.to_owned(),
                messages: vec![format!("HTTP {status}: {}", exchange.record.response_excerpt)],
            }
        }
        StatusClass::Retry { reason } => reason.clone(),
        // Callers read successes themselves; this arm only keeps the match total.
        StatusClass::Success => "unexpected answer".to_owned(),
    };
    Outcome::retry(reason, exchange.retry_after)
}

#[derive(Deserialize)]
struct ValidationAnswer {
    #[serde(default, rename = "validationMessages")]
    validation_messages: Vec<ValidationMessage>,
}

#[derive(Deserialize)]
struct ValidationMessage {
    #[serde(default, rename = "fieldPath")]
    field_path: String,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "validationCode")]
    validation_code: String,
}

/// Reads a debug answer into one verdict per event of the request: `None` = valid.
/// A message about `events[N]…` concerns event N; any other concerns them all.
fn read_validation(exchange: &Exchange, count: usize) -> Vec<Option<Outcome>> {
    let answer: ValidationAnswer = match serde_json::from_slice(&exchange.body) {
        Ok(a) if exchange.record.error.is_none() => a,
        _ => {
            let outcome = Outcome::retry("the debug endpoint's answer could not be read", exchange.retry_after);
            return vec![Some(outcome); count];
        }
    };
    let mut own: Vec<Vec<String>> = vec![Vec::new(); count];
    let mut shared = Vec::new();
    for m in answer.validation_messages {
        let text = format!("{}: {} [{}]", m.field_path, m.description, m.validation_code);
        match event_index(&m.field_path).filter(|&n| n < count) {
            Some(n) => own[n].push(text),
            None => shared.push(text),
        }
    }
    own.into_iter()
        .map(|mut messages| {
            messages.extend(shared.iter().cloned());
            (!messages.is_empty()).then(|| Outcome::Rejected { reason: reason::INVALID.to_owned(), messages })
        })
        .collect()
}

/// `N` of a field path starting `events[N]`.
fn event_index(field_path: &str) -> Option<usize> {
    let rest = field_path.strip_prefix("events[")?;
    let (n, _) = rest.split_once(']')?;
    n.parse().ok()
}

impl Destination for Ga4 {
    fn name(&self) -> &str {
        &self.name
    }

    fn rules(&self) -> Arc<dyn Rules> {
        self.rules.clone()
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn batches(&self, claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
        let parts: Vec<Ga4Event> =
            claimed.iter().map(|c| Ga4Event::new(&c.event, &c.route, c.strip_personal)).collect();
        let plan = batch::split(&parts, self.batch_size);
        batch::distribute(claimed, &plan)
    }

    fn preflight<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        self.do_preflight(batch).boxed()
    }

    fn send<'a>(&'a self, batch: &'a [Claimed], validated: &'a [i64]) -> BoxFuture<'a, SendReport> {
        self.do_send(batch, validated).boxed()
    }

    /// The routes change nothing: the debug endpoint takes any event name.
    fn check<'a>(&'a self, _routes: &'a [Route]) -> BoxFuture<'a, Vec<crate::delivery::Check>> {
        self.do_check().boxed()
    }

    fn validate_only<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        self.do_validate_only(batch).boxed()
    }
}

impl super::Platform for Ga4 {
    const TYPE: &'static str = "ga4";
    const LABEL: &'static str = "GA4";
    const SHOWCASE: super::Showcase = showcase::SHOWCASE;
    /// The Data API's `runReport` lists purchases per transaction id (`[destinations.data_api]`).
    const READ_BACK: super::ReadBack = super::ReadBack::Api;

    fn pull(config: &Ga4Config, query: super::PullQuery) -> super::Pulling {
        data_api::pull(config, query)
    }
    type Config = Ga4Config;

    fn rules(config: &Ga4Config) -> Arc<dyn Rules> {
        Arc::new(Ga4Rules::new(config))
    }

    fn destination(config: &Ga4Config) -> anyhow::Result<Arc<dyn Destination>> {
        Ok(Arc::new(Self::new(config)?))
    }

    fn report_id(event: &crate::core::Event) -> Option<String> {
        transaction_id(event)
    }

    fn simulate(options: super::SimOptions) -> super::Starting {
        showcase::simulate(options)
    }
}
