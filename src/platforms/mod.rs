//! The platforms Surety delivers to. Each is one folder — its `[[destinations]]` section and its
//! checks (`config`), its adapter (payloads, batching, sending, answers read into `Outcome`s),
//! its simulator (`sim`), the id its reports name a conversion by — and one line in [`ALL`].
//! Everything that differs by platform reaches it through [`Platform`] (ADR 0007); configuration,
//! `build`, planning, reconcile and the simulators' users iterate [`ALL`].

pub mod ga4;
pub mod google_ads;
pub mod google_auth;
pub mod linkedin;
mod load;
pub mod meta;
pub mod read_back;

use std::path::Path;
use std::sync::Arc;

use figment::Figment;
use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use self::read_back::{PullError, PullQuery, Pulling, ReadBack, ReportedRow};
use crate::config::{Config, DestinationConfig, Mode, ReadSection, Section, SectionReader};
use crate::core::plan::{Planner, Rules};
use crate::core::Event;
use crate::delivery::validate_mode::ValidateMode;
use crate::delivery::Destination;
pub use crate::sim::{Fault, Marker, SimOptions};

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
    /// How `surety demo` and `surety bench` show it.
    const SHOWCASE: Showcase;
    /// How reconcile reads what it counted without a file (`--platform DEST=api`).
    const READ_BACK: ReadBack;
    /// Reads what it counted through its reporting API (only for [`ReadBack::Api`]).
    fn pull(config: &Self::Config, query: PullQuery) -> Pulling {
        let _ = (config, query);
        Box::pin(async { Err(PullError::NotConfigured(format!("{} has no reporting API Surety reads", Self::LABEL))) })
    }

    /// Starts its simulator on 127.0.0.1.
    fn simulate(options: SimOptions) -> Starting;
}

/// What `surety demo` and `surety bench` need to know of a platform to show it (each platform's
/// `showcase.rs`); with its [`Simulator`], they iterate [`ALL`] and name no platform.
#[derive(Clone, Copy, Debug)]
pub struct Showcase {
    /// The demo's destination name.
    pub demo_name: &'static str,
    /// The demo's and the bench's catalog routes to it.
    pub routes: &'static [ShowRoute],
    /// Where its requests name the conversions they carry (the bench's arrival layer).
    pub marker: Marker,
    /// Whether the ledger says `accepted` (rather than `sent`) once it took a delivery.
    pub accepts: bool,
    /// How it confirms processing after the send, told as a step of the tour; `None` if the
    /// answer to the send is all it says.
    pub confirms_later: Option<&'static str>,
    /// The time window the tour's 80-hour-old order meets, in hours.
    pub window_hours: u32,
    /// Whether it matches a conversion by a browser's `client_id` only (the phone order has none).
    pub needs_client_id: bool,
    /// Which consent it needs, and which identity, as the tour's introduction says them.
    pub consent: &'static str,
    pub identity: &'static str,
    /// What `surety bench` says of its configuration, if anything (a lifted quota).
    pub bench_note: Option<&'static str>,
}

/// A catalog route: business event `kind` is sent to the platform as `event` (with `extra` TOML
/// keys of the route), which the demo's catalog table shows as `shown`.
#[derive(Clone, Copy, Debug)]
pub struct ShowRoute {
    pub kind: &'static str,
    pub event: &'static str,
    pub extra: &'static str,
    pub shown: &'static str,
}

impl Showcase {
    /// Its route for business event `kind`, if the catalog has one.
    pub fn route(&self, kind: &str) -> Option<&'static ShowRoute> {
        self.routes.iter().find(|r| r.kind == kind)
    }
}

/// What the destination a simulator configures is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `surety demo`: every check the platform offers, shown.
    Tour,
    /// `surety bench`: Surety measured, not the platform's quota.
    Load,
}

/// A running simulator, whatever its platform (the typed ones are in each `<p>::sim`).
pub trait Simulator: Send + Sync {
    /// `http://127.0.0.1:PORT`: the `base_url` to configure a destination with.
    fn base_url(&self) -> &str;
    /// Conversions it took.
    fn received(&self) -> u64;
    /// Requests carrying conversions that it took.
    fn requests(&self) -> u64;
    /// Requests it answered with an injected fault.
    fn faulted(&self) -> u64;
    /// Every request meets `fault` from now on; `None` heals.
    fn set_fault(&self, fault: Option<Fault>);
    /// The `[[destinations]]` section of a destination `name` pointing at it (its secrets written
    /// to files under `dir`), without the common keys.
    fn destination_toml(&self, name: &str, dir: &Path, purpose: Purpose) -> std::io::Result<String>;
    /// What the demo's introduction says of it.
    fn introduce(&self) -> Vec<String>;
    /// What it took, in its platform's words (one line of the demo's report).
    fn describe(&self) -> String;
    /// The typed simulator, for tests that look closer.
    fn as_any(&self) -> &dyn std::any::Any;
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// A secret written to `dir/name`, as a `file:` reference in TOML.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> std::io::Result<String> {
    let path = dir.join(name);
    std::fs::write(&path, value)?;
    Ok(toml_string(&format!("file:{}", path.display())))
}

/// `s` as a TOML string.
pub fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A simulator starting on 127.0.0.1.
pub type Starting = BoxFuture<'static, std::io::Result<Box<dyn Simulator>>>;

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
    pub showcase: Showcase,
    pub simulate: fn(SimOptions) -> Starting,
    pub read_back: ReadBack,
    pull: fn(&DestinationConfig, PullQuery) -> Option<Pulling>,
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
            showcase: P::SHOWCASE,
            simulate: P::simulate,
            read_back: P::READ_BACK,
            pull: pull_for::<P>,
        }
    }

    /// Reads what the platform counted for a destination of its type ([`ReadBack::Api`]).
    pub fn pull(&self, config: &DestinationConfig, query: PullQuery) -> Pulling {
        (self.pull)(config, query).unwrap_or_else(|| {
            let name = config.name().to_owned();
            Box::pin(
                async move { Err(PullError::NotConfigured(format!("destination '{name}' is of another platform"))) },
            )
        })
    }
}

fn pull_for<P: Platform>(config: &DestinationConfig, query: PullQuery) -> Option<Pulling> {
    config.section::<P::Config>().map(|c| P::pull(c, query))
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
