//! The platforms Surety delivers to. Each is one folder — its `[[destinations]]` section and its
//! checks (`config`), its adapter (payloads, batching, sending, answers read into `Outcome`s),
//! its simulator (`sim`), the id its reports name a conversion by — and one line in [`ALL`].
//! Everything that differs by platform reaches it through [`Platform`] (ADR 0007); configuration,
//! `build`, planning, reconcile and the simulators' users iterate [`ALL`].

pub mod ga4;
pub mod google_ads;
pub mod linkedin;
mod load;
pub mod meta;

use std::sync::Arc;

use figment::Figment;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::{Config, DestinationConfig, Mode, ReadSection, Section, SectionReader};
use crate::core::plan::{Planner, Rules};
use crate::core::Event;
use crate::delivery::validate_mode::ValidateMode;
use crate::delivery::Destination;

/// Every platform, in the order `type`s are listed in messages. Adding one: its folder, and one
/// line here (`tests::every_platform_is_complete` checks the rest: default section, simulator,
/// `docs/platforms.md` section).
pub const ALL: &[Entry] = &[
    Entry::of::<ga4::Ga4>(),
    Entry::of::<meta::Meta>(),
    Entry::of::<google_ads::GoogleAds>(),
    Entry::of::<linkedin::Linkedin>(),
];

/// What a platform is to the rest of Surety.
pub trait Platform: 'static {
    /// `type = "…"` in `[[destinations]]`.
    const TYPE: &'static str;
    /// Its name in messages and reports (`"Google Ads"`).
    const LABEL: &'static str;
    /// Whether its reports name a conversion by the route's `event` (Google Ads reports the
    /// conversion action's name, the catalog routes its id: reconcile matches on the order).
    const REPORTS_ROUTE_EVENT: bool = true;
    /// Its `[[destinations]]` section, read and checked by `crate::config`.
    type Config: Section + Clone + Serialize + DeserializeOwned;

    /// Its pure planning rules (`core::plan::Rules`), from configuration alone: no secret read.
    fn rules(config: &Self::Config) -> Arc<dyn Rules>;
    /// Its adapter (secrets resolved here).
    fn destination(config: &Self::Config) -> anyhow::Result<Arc<dyn Destination>>;
    /// The id its reports name this conversion by, as its adapter sends it (reconcile).
    fn report_id(event: &Event) -> Option<String>;
    /// Starts its simulator on 127.0.0.1.
    fn simulate() -> BoxFuture<'static, std::io::Result<Box<dyn Simulator>>>;
}

/// A running simulator, whatever its platform (the typed ones are in each `<p>::sim`).
pub trait Simulator: Send + Sync {
    /// `http://127.0.0.1:PORT`: the `base_url` to configure a destination with.
    fn base_url(&self) -> &str;
    /// Conversions it took.
    fn received(&self) -> u64;
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// One line of [`ALL`]: a [`Platform`]'s parts, callable without knowing its type.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    pub type_name: &'static str,
    pub label: &'static str,
    pub reports_route_event: bool,
    read: fn(&Figment) -> ReadSection,
    rules: fn(&DestinationConfig) -> Option<Arc<dyn Rules>>,
    destination: fn(&DestinationConfig) -> Option<Built>,
    pub report_id: fn(&Event) -> Option<String>,
    pub simulate: fn() -> BoxFuture<'static, std::io::Result<Box<dyn Simulator>>>,
}

impl Entry {
    pub const fn of<P: Platform>() -> Self {
        Self {
            type_name: P::TYPE,
            label: P::LABEL,
            reports_route_event: P::REPORTS_ROUTE_EVENT,
            read: read::<P>,
            rules: rules_for::<P>,
            destination: destination_for::<P>,
            report_id: P::report_id,
            simulate: P::simulate,
        }
    }
}

/// An adapter built, or why not.
type Built = anyhow::Result<Arc<dyn Destination>>;

fn read<P: Platform>(section: &Figment) -> ReadSection {
    section.extract::<P::Config>().map(|c| Box::new(c) as Box<dyn Section>).map_err(Box::new)
}

fn rules_for<P: Platform>(config: &DestinationConfig) -> Option<Arc<dyn Rules>> {
    config.section::<P::Config>().map(P::rules)
}

fn destination_for<P: Platform>(config: &DestinationConfig) -> Option<Built> {
    config.section::<P::Config>().map(P::destination)
}

fn read_section(type_name: &str, section: &Figment) -> Option<ReadSection> {
    find(type_name).map(|entry| (entry.read)(section))
}

/// Every `type`, in [`ALL`]'s order.
pub const TYPES: [&str; ALL.len()] = {
    let mut out = [""; ALL.len()];
    let mut i = 0;
    while i < ALL.len() {
        out[i] = ALL[i].type_name;
        i += 1;
    }
    out
};

/// How configuration reads the sections of [`ALL`].
pub const SECTIONS: SectionReader = SectionReader { types: &TYPES, read: read_section };

/// The platform of a `type`.
pub fn find(type_name: &str) -> Option<&'static Entry> {
    ALL.iter().find(|e| e.type_name == type_name)
}

/// The platform of a configured destination.
pub fn of(config: &DestinationConfig) -> Option<&'static Entry> {
    find(config.type_name())
}

/// Builds the destinations of a validated configuration (secrets resolved here); one in
/// `mode = "validate"` validates instead of sending ([`ValidateMode`]).
pub fn build(configs: &[DestinationConfig]) -> anyhow::Result<Vec<Arc<dyn Destination>>> {
    configs
        .iter()
        .map(|c| {
            let built = build_one(c)?;
            Ok(match c.common().mode {
                Mode::Live => built,
                Mode::Validate => Arc::new(ValidateMode::new(built)) as Arc<dyn Destination>,
            })
        })
        .collect()
}

/// One destination's adapter as its platform builds it, whatever its `mode` (`surety
/// destinations test` checks it either way).
pub fn build_one(config: &DestinationConfig) -> anyhow::Result<Arc<dyn Destination>> {
    of(config).and_then(|entry| (entry.destination)(config)).unwrap_or_else(|| {
        Err(anyhow::anyhow!("destinations.{}: no platform of type '{}'", config.name(), config.type_name()))
    })
}

/// One destination's planning rules, as its adapter would use them, from its settings alone.
pub fn rules_of(config: &DestinationConfig) -> Option<Arc<dyn Rules>> {
    of(config).and_then(|entry| (entry.rules)(config))
}

/// The planner `surety serve` would build for this configuration (same routes, rules and
/// identity waits as [`crate::delivery::planner`] over built adapters), from the configuration
/// alone: no adapter is built and no secret read. For what plans but never sends (`surety import`).
pub fn planner_from_config(config: &Config) -> Planner {
    let rules = config.destinations.iter().filter_map(|d| Some((d.name().to_owned(), rules_of(d)?))).collect();
    crate::delivery::rules_of::planner_with(config, rules)
}

/// Whole seconds as a duration, saturating.
pub(crate) fn seconds(secs: u64) -> chrono::Duration {
    i64::try_from(secs).ok().and_then(chrono::Duration::try_seconds).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests;
