//! Meta Conversions API: payloads, rules, batching, sending, and the reading of answers.
//!
//! Official pages: developers.facebook.com/docs/marketing-api/conversions-api — using-the-api
//! (endpoint, 1,000 events per request, `test_event_code`), parameters (server-event,
//! customer-information-parameters, custom-data), deduplicate-pixel-and-server-events
//! (`event_id` + `event_name`), data-processing-options (Limited Data Use); the Graph API's
//! guides/error-handling; the official SDK `facebook-business` (`serverside/normalize.py`) for
//! hashing. Condensed in docs/platforms.md §Meta.
//!
//! Meta rejects a whole request when one of its events is invalid. Planning validates each
//! event against the documented rules first ([`check_event`]); when Meta still answers a batch
//! with a 400 about its payload, the batch is split in halves and each half sent again, within
//! the same send, until the events Meta refuses stand alone — only they end `rejected`, with
//! Meta's message.
//!
//! A 2xx is "accepted" when Meta's `events_received` equals the number of events sent.

mod answer;
mod check;
pub mod config;
mod normalize;
mod payload;
mod send;
mod showcase;
pub mod sim;
mod validate;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::future::BoxFuture;
use futures::FutureExt;

pub use self::answer::{classify, GraphError, RequestVerdict, SLOW_DOWN_FLOOR};
use self::config::{MetaConfig, MAX_BATCH_SIZE, MAX_WINDOW_DAYS};
pub use self::normalize::{hash as normalize_and_hash, normalize as normalize_field, Field, COUNTRY_CODES};
pub use self::payload::{
    action_source, event_id, event_object, matchable, order_id, request_body, user_data, Ldu, ServerEvent, Settings,
    CUSTOM_DATA_ATTRIBUTES, EVENT_SOURCE_URL_ATTRIBUTE, PERSONAL_KEYS,
};
pub use self::send::MAX_ISOLATION_REQUESTS;
pub use self::validate::{check_event, HASHED_KEYS, PLAIN_KEYS};
use crate::config::SecretValue;
use crate::core::plan::{ConsentPolicy, Rules};
use crate::core::{Claimed, Event, Route};
use crate::delivery::{http, Destination, SendReport};

/// The planning rules of one Meta destination.
#[derive(Clone, Debug)]
pub struct MetaRules {
    window: chrono::Duration,
    dedupe_window: chrono::Duration,
    policy: ConsentPolicy,
    settings: Settings,
}

impl MetaRules {
    pub fn new(config: &MetaConfig) -> Self {
        let days = config.window_days.clamp(1, MAX_WINDOW_DAYS);
        let consent = &config.common.consent;
        let ldu = (!config.data_processing_options.is_empty()).then(|| Ldu {
            options: config.data_processing_options.clone(),
            country: config.data_processing_options_country,
            state: config.data_processing_options_state,
        });
        Self {
            window: chrono::Duration::days(i64::from(days)),
            dedupe_window: super::seconds(config.dedupe_window_secs),
            policy: consent.policy(),
            settings: Settings { default_action_source: config.action_source.clone(), ldu },
        }
    }

    /// What every event of this destination carries besides the event itself.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl Rules for MetaRules {
    fn window(&self) -> chrono::Duration {
        self.window
    }

    /// The event carries something Meta can match a person on ([`matchable`]). Judged on the
    /// full identity: if consent then strips what made it matchable, validation says so.
    fn identity_ok(&self, event: &Event) -> bool {
        matchable(&user_data(&event.identity, false))
    }

    fn validate(&self, event: &Event, route: &Route, strip_personal: bool) -> Vec<String> {
        check_event(&event_object(event, route, strip_personal, &self.settings))
    }

    /// Meta keeps one of the pixel's event and ours when both carry the same `event_id` and
    /// `event_name` (see [`event_id`] for which id is sent).
    fn dedupes_with_browser(&self) -> bool {
        true
    }

    /// Meta keeps one of the two only when ours arrives within 48 hours of the browser's
    /// (`dedupe_window_secs`; docs/platforms.md §Meta).
    fn browser_dedupe_window(&self) -> Option<chrono::Duration> {
        Some(self.dedupe_window)
    }

    /// Meta dedupes on `event_id` + `event_name`, and every send of a delivery carries the same
    /// ones. (A browser-tracked resend past the dedupe window is not deduplicated:
    /// `Rules::dedupes_resend_at` says so.)
    fn dedupes_resend(&self, _event: &Event, _route: &Route) -> bool {
        true
    }

    fn consent_policy(&self) -> &ConsentPolicy {
        &self.policy
    }
}

/// One configured Meta pixel.
///
/// Deliberately not `Debug`: the request URL carries the access token.
pub struct Meta {
    name: String,
    rules: Arc<MetaRules>,
    client: reqwest::Client,
    events_url: String,
    /// Kept to scrub it from anything Meta might echo back.
    token: SecretValue,
    batch_size: usize,
    concurrency: usize,
    test_event_code: Option<String>,
}

impl Meta {
    /// Resolves the access token and prepares the client.
    pub fn new(config: &MetaConfig) -> anyhow::Result<Self> {
        let token = config.access_token.resolve().map_err(anyhow::Error::msg).with_context(|| {
            format!("destinations.{}.access_token ({})", config.name, config.access_token.reference())
        })?;
        let base = config.base_url.trim_end_matches('/');
        let mut url = url::Url::parse(&format!("{base}/{}/{}/events", config.api_version, config.pixel_id))
            .with_context(|| format!("destinations.{}.base_url: '{}' is not a URL", config.name, config.base_url))?;
        url.query_pairs_mut().append_pair("access_token", token.expose());
        Ok(Self {
            name: config.name.clone(),
            rules: Arc::new(MetaRules::new(config)),
            client: http::client(Duration::from_millis(config.common.timeout_ms)),
            events_url: url.into(),
            token,
            batch_size: config.batch_size.clamp(1, MAX_BATCH_SIZE),
            concurrency: config.common.concurrency.max(1),
            test_event_code: config.test_event_code.clone().filter(|c| !c.trim().is_empty()),
        })
    }

    pub fn meta_rules(&self) -> &MetaRules {
        &self.rules
    }
}

impl Destination for Meta {
    fn name(&self) -> &str {
        &self.name
    }

    fn rules(&self) -> Arc<dyn Rules> {
        self.rules.clone()
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// Consecutive runs of at most `batch_size`, in claim order: Meta has no request-level
    /// fields that events would have to share.
    fn batches(&self, claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
        let mut batches = Vec::with_capacity(claimed.len().div_ceil(self.batch_size));
        let mut current = Vec::with_capacity(self.batch_size.min(claimed.len()));
        for c in claimed {
            current.push(c);
            if current.len() == self.batch_size {
                batches.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            batches.push(current);
        }
        batches
    }

    /// Meta has no validation endpoint (a `test_event_code` request is still recorded):
    /// planning's validation is the preflight.
    fn preflight<'a>(&'a self, _batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        futures::future::ready(SendReport::default()).boxed()
    }

    fn send<'a>(&'a self, batch: &'a [Claimed], _validated: &'a [i64]) -> BoxFuture<'a, SendReport> {
        self.do_send(batch).boxed()
    }

    /// The routes change nothing: a pixel takes any event name.
    fn check<'a>(&'a self, _routes: &'a [Route]) -> BoxFuture<'a, Vec<crate::delivery::Check>> {
        self.do_check().boxed()
    }

    fn validate_only<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        self.do_validate_only(batch).boxed()
    }
}

impl super::Platform for Meta {
    const TYPE: &'static str = "meta";
    const LABEL: &'static str = "Meta";
    const SHOWCASE: super::Showcase = showcase::SHOWCASE;
    const READ_BACK: super::ReadBack = super::ReadBack::File(
        "Meta has no API that lists the conversions it counted (the Insights API reports aggregates per ad \
         and day only): export the Events Manager or Ads Manager report and pass it as --platform DEST=FILE",
    );
    type Config = MetaConfig;

    fn rules(config: &MetaConfig) -> Arc<dyn Rules> {
        Arc::new(MetaRules::new(config))
    }

    fn destination(config: &MetaConfig) -> anyhow::Result<Arc<dyn Destination>> {
        Ok(Arc::new(Self::new(config)?))
    }

    fn report_id(event: &crate::core::Event) -> Option<String> {
        // Meta dedupes on `event_id`; an order conversion reports its order id.
        order_id(event).or_else(|| Some(event.event_id.as_str().to_owned()))
    }

    fn simulate(options: super::SimOptions) -> super::Starting {
        showcase::simulate(options)
    }
}
