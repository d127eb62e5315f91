//! Loading a configuration with every platform's section: `Config`'s loaders live here, above
//! `crate::config`, because only the platform list knows which `type`s exist.

use std::path::Path;

use super::SECTIONS;
use crate::config::{Config, ConfigError, Secrets};

impl Config {
    /// Defaults, then the file (if any), then `SURETY_…` variables (`__` separates levels:
    /// `SURETY_STORAGE__URL`, `SURETY_SERVER__LISTEN`).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &SECTIONS, Secrets::Read)
    }

    /// As [`Config::load`], for a command that plans but never sends (`surety import`): a
    /// destination's secret that cannot be read here is no problem (its reference must still be
    /// well formed, and every other check stands), since nothing is sent with it.
    pub fn load_for_planning(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(file, &SECTIONS, Secrets::SkipDestinations)
    }

    /// Parses a TOML text over the defaults, without the environment (tests, `surety demo`).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with(text, &SECTIONS)
    }
}
