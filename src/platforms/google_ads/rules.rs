//! The planning rules of a Google Ads destination (pure): its window, whom it can attribute a
//! conversion to, what it refuses, and what it deduplicates. docs/platforms.md §Google Ads.

use std::sync::Arc;

use super::payload::Shape;
use super::validate::check_delivery;
use crate::core::plan::{ConsentPolicy, Rules};
use crate::core::{Event, Route};
use crate::platforms::google_ads::config::GoogleAdsConfig;

#[derive(Clone, Debug)]
pub struct GoogleAdsRules {
    window: chrono::Duration,
    policy: ConsentPolicy,
    shape: Arc<Shape>,
}

impl GoogleAdsRules {
    pub fn new(config: &GoogleAdsConfig) -> Self {
        let consent = &config.common.consent;
        Self {
            window: chrono::Duration::days(i64::from(config.window_days.max(1))),
            policy: consent.policy(),
            shape: Arc::new(Shape::new(config)),
        }
    }

    pub fn shape(&self) -> &Arc<Shape> {
        &self.shape
    }
}

/// Whether Google can attach the event to anyone: a click id, or a user identifier it takes —
/// an email, a phone, or a whole address (names, country and postal code).
pub fn has_identity(event: &Event) -> bool {
    let id = &event.identity;
    let present = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
    let click = present(&id.gclid) || present(&id.gbraid) || present(&id.wbraid);
    let address = id.first_name.is_some() && id.last_name.is_some() && present(&id.country) && present(&id.postal_code);
    click || id.email.is_some() || id.phone.is_some() || address
}

impl Rules for GoogleAdsRules {
    fn window(&self) -> chrono::Duration {
        self.window
    }

    fn identity_ok(&self, event: &Event) -> bool {
        has_identity(event)
    }

    /// Checks the event object that would be sent (see `validate`), so Google's fast-fail
    /// never sinks a shared request for a rule we could have known.
    fn validate(&self, event: &Event, route: &Route, strip_personal: bool) -> Vec<String> {
        check_delivery(event, route, strip_personal, &self.shape)
    }

    /// No: Google dedupes on `transactionId` within one conversion action, and the browser's
    /// tag usually reports to a different (website) action than an import does, so both would
    /// count. A browser-tracked kind is skipped (`browser_tracked`); route it here only if the
    /// tag does not report it to Google Ads.
    fn dedupes_with_browser(&self) -> bool {
        false
    }

    /// Yes: every event carries a `transactionId` fixed at ingest (see `payload::transaction_id`),
    /// and a repeat of it within the conversion action is kept once — as the same conversion,
    /// or for an adjustment, the same restated value.
    fn dedupes_resend(&self, _event: &Event, _route: &Route) -> bool {
        true
    }

    fn consent_policy(&self) -> &ConsentPolicy {
        &self.policy
    }
}
