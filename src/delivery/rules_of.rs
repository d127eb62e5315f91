//! Planning rules from configuration alone: each destination's pure `Rules` (window, identity,
//! consent, dedupe) built from its settings, without an adapter — no secret is resolved and no
//! HTTP client is made. For what plans but never sends (`surety import`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Config, DestinationConfig};
use crate::core::plan::{Planner, Rules};

/// One destination's planning rules, as its adapter would use them.
pub fn rules_from_config(config: &DestinationConfig) -> Arc<dyn Rules> {
    match config {
        DestinationConfig::Ga4(c) => Arc::new(super::ga4::Ga4Rules::new(c)),
        DestinationConfig::Meta(c) => Arc::new(super::meta::MetaRules::new(c)),
        DestinationConfig::GoogleAds(c) => Arc::new(super::google_ads::GoogleAdsRules::new(c)),
        DestinationConfig::Linkedin(c) => Arc::new(super::linkedin::LinkedinRules::new(c)),
    }
}

/// The planner `surety serve` would build for this configuration (same routes, rules and
/// identity waits as [`super::planner`] over built adapters), from the configuration alone.
pub fn planner_from_config(config: &Config) -> Planner {
    let rules = config.destinations.iter().map(|d| (d.name().to_owned(), rules_from_config(d))).collect();
    planner_with(config, rules)
}

/// The planner for `config`'s routes and identity waits with these rules per destination.
pub(super) fn planner_with(config: &Config, rules: BTreeMap<String, Arc<dyn Rules>>) -> Planner {
    let waits = config
        .destinations
        .iter()
        .map(|d| {
            (
                d.name().to_owned(),
                chrono::Duration::seconds(d.common().identity_wait_secs.min(i64::MAX as u64 / 1000) as i64),
            )
        })
        .collect();
    Planner::new(config.routes(), rules).with_identity_waits(waits)
}
