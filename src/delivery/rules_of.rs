//! The planner from a configuration's routes, identity waits and samples, given each destination's pure
//! `Rules`: from built adapters (`super::planner`, `surety serve`) or from configuration alone
//! (`crate::platforms::planner_from_config`, `surety import`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::core::plan::{Planner, Rules};

/// The planner for `config`'s routes and identity waits with these rules per destination.
pub fn planner_with(config: &Config, rules: BTreeMap<String, Arc<dyn Rules>>) -> Planner {
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
    let samples =
        config.destinations.iter().filter_map(|d| Some((d.name().to_owned(), d.common().sample.clone()?))).collect();
    Planner::new(config.routes(), rules).with_identity_waits(waits).with_samples(samples)
}
