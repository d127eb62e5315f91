//! Layered configuration: the commented defaults shipped in the binary, then a TOML file, then
//! `SURETY_…` environment variables. Validated as a whole at start; secrets cannot be printed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::core::plan::{ConsentPurpose, OnPersonalDataDenied};
use crate::core::retry::RetryPolicy;
use crate::core::{Kind, Route};

/// The commented default configuration, every key documented (`surety check-config --print-default`).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The longest `retry.max_age_secs` accepted: ten years.
const MAX_AGE_LIMIT_SECS: u64 = 10 * 365 * 24 * 3600;

/// The sections an environment variable may set (`SURETY_<SECTION>__<KEY>`).
const SECTIONS: [&str; 6] = ["storage", "server", "auth", "retry", "worker", "log"];

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub storage: StorageConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub retry: RetryPolicy,
    pub worker: WorkerConfig,
    pub log: LogConfig,
    #[serde(default)]
    pub destinations: Vec<DestinationConfig>,
    /// kind → destination name → route.
    #[serde(default)]
    pub catalog: BTreeMap<String, BTreeMap<String, Route>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://PATH` (relative to the working folder) or, later, `postgres://…`.
    pub url: String,
    /// SQLite `synchronous`: `full` (fsync at every commit; survives power loss) or `normal`
    /// (survives a process crash, not a power cut).
    pub sqlite_synchronous: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    /// Run the HTTP API in this process.
    pub api: bool,
    /// Run the delivery workers in this process.
    pub workers: bool,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most events in one `{"events": [...]}` batch.
    pub max_batch_events: usize,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub ingest_tokens: Vec<Secret>,
    #[serde(default)]
    pub admin_tokens: Vec<Secret>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// How long a claim is held before another worker may take the delivery over.
    pub lease_secs: u64,
    /// Most deliveries one claim takes.
    pub claim_batch: usize,
    /// Longest sleep when nothing is due (new events wake workers at once).
    pub poll_interval_ms: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `surety=debug`; `RUST_LOG` wins.
    pub level: String,
}

/// One configured destination. `type` selects the platform.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DestinationConfig {
    Ga4(Ga4Config),
}

impl DestinationConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Ga4(c) => &c.name,
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            Self::Ga4(c) => &c.common,
        }
    }
}

/// Settings every destination has.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Most requests in flight to this destination at once.
    #[serde(default = "defaults::concurrency")]
    pub concurrency: usize,
    /// Per-request timeout.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub consent: ConsentConfig,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsentConfig {
    /// The consent without which nothing is sent: `analytics` or `ad_user_data`.
    pub purpose: ConsentPurpose,
    /// When `ad_user_data` is denied: `strip` the personal fields and send, or `skip`.
    pub on_personal_data_denied: OnPersonalDataDenied,
    /// Treat consent an event does not state as granted.
    pub assume_granted: bool,
}

impl Default for ConsentConfig {
    fn default() -> Self {
        Self {
            purpose: ConsentPurpose::Analytics,
            on_personal_data_denied: OnPersonalDataDenied::Strip,
            assume_granted: false,
        }
    }
}

/// GA4 Measurement Protocol (PLATFORMS.md §GA4).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ga4Config {
    pub name: String,
    /// Web stream id `G-…`.
    pub measurement_id: String,
    pub api_secret: Secret,
    /// `https://www.google-analytics.com`, `https://region1.google-analytics.com` (EU), a proxy or a simulator.
    #[serde(default = "defaults::ga4_base_url")]
    pub base_url: String,
    /// Events per request, at most 25.
    #[serde(default = "defaults::ga4_batch_size")]
    pub batch_size: usize,
    /// How old an event may be, at most 72 hours.
    #[serde(default = "defaults::ga4_window_hours")]
    pub window_hours: u32,
    /// Validate every batch against `/debug/mp/collect` before sending it.
    #[serde(default)]
    pub validate_with_debug_endpoint: bool,
    #[serde(flatten)]
    pub common: Common,
}

mod defaults {
    pub fn concurrency() -> usize {
        8
    }
    pub fn timeout_ms() -> u64 {
        10_000
    }
    pub fn ga4_base_url() -> String {
        "https://www.google-analytics.com".into()
    }
    pub fn ga4_batch_size() -> usize {
        25
    }
    pub fn ga4_window_hours() -> u32 {
        72
    }
}

/// A secret named by where it lives — `env:NAME` or `file:PATH` — never inline.
/// Neither `Debug` nor `Display` shows the value; only the reference is ever printed.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct Secret {
    reference: String,
}

impl Secret {
    /// Reads the value now (config validation) or fails with why.
    pub fn resolve(&self) -> Result<SecretValue, String> {
        if let Some(name) = self.reference.strip_prefix("env:") {
            std::env::var(name).map(SecretValue).map_err(|_| format!("environment variable {name} is not set"))
        } else if let Some(path) = self.reference.strip_prefix("file:") {
            std::fs::read_to_string(path)
                .map(|s| SecretValue(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| format!("cannot read secret file {path}: {e}"))
        } else {
            Err("a secret must be written env:NAME or file:PATH".into())
        }
    }

    pub fn reference(&self) -> &str {
        &self.reference
    }
}

impl TryFrom<String> for Secret {
    type Error = String;
    fn try_from(reference: String) -> Result<Self, Self::Error> {
        if reference.starts_with("env:") || reference.starts_with("file:") {
            Ok(Self { reference })
        } else {
            Err("secrets are never written inline: use \"env:NAME\" or \"file:/path\"".into())
        }
    }
}

impl From<Secret> for String {
    fn from(s: Secret) -> String {
        s.reference
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.reference)
    }
}

/// A resolved secret. No `Debug`, no `Display`: it can be used, not printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Loading or validating failed; `problems` lists every one found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl Config {
    /// Defaults, then the file (if any), then `SURETY_…` variables (`__` separates levels:
    /// `SURETY_STORAGE__URL`, `SURETY_SERVER__LISTEN`).
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError { problems: vec![format!("config file {} not found", path.display())] });
            }
            figment = figment.merge(Toml::file(path));
        }
        // Only SURETY_<SECTION>__<KEY> variables configure; others with the prefix (a secret such
        // as SURETY_INGEST_TOKEN, or SURETY_CONFIG) are not configuration keys.
        figment = figment.merge(Env::prefixed("SURETY_").split("__").filter(|key| {
            key.as_str()
                .split_once('.')
                .is_some_and(|(section, _)| SECTIONS.contains(&section.to_ascii_lowercase().as_str()))
        }));
        Self::from_figment(figment)
    }

    /// Parses a TOML text over the defaults, without the environment (tests, `surety demo`).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let config: Config =
            figment.extract().map_err(|e| ConfigError { problems: e.into_iter().map(|e| e.to_string()).collect() })?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Every semantic problem, so `check-config` can explain them all at once.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if !self.storage.url.starts_with("sqlite:") {
            p.push(format!("storage.url: '{}' is not supported yet; use sqlite://PATH", self.storage.url));
        }
        if !["full", "normal"].contains(&self.storage.sqlite_synchronous.as_str()) {
            p.push("storage.sqlite_synchronous: must be \"full\" or \"normal\"".into());
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!("server.listen: '{}' is not an address such as 127.0.0.1:8080", self.server.listen));
        }
        if !(1..=1000).contains(&self.server.max_batch_events) {
            p.push("server.max_batch_events: must be between 1 and 1000".into());
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            p.push("log.format: must be \"text\" or \"json\"".into());
        }
        if self.retry.max_age_secs > MAX_AGE_LIMIT_SECS {
            p.push(format!("retry.max_age_secs: at most {MAX_AGE_LIMIT_SECS} (ten years)"));
        }
        if self.retry.max_attempts == 0 {
            p.push("retry.max_attempts: must be at least 1".into());
        }
        if self.retry.base_delay_ms > self.retry.max_delay_ms {
            p.push("retry.base_delay_ms: must not exceed retry.max_delay_ms".into());
        }
        if self.worker.claim_batch == 0 || self.worker.lease_secs == 0 {
            p.push("worker.claim_batch and worker.lease_secs: must be at least 1".into());
        }
        for (i, s) in self.auth.ingest_tokens.iter().chain(&self.auth.admin_tokens).enumerate() {
            if let Err(e) = s.resolve() {
                p.push(format!("auth token #{} ({}): {e}", i + 1, s.reference()));
            }
        }
        let mut names = BTreeSet::new();
        for d in &self.destinations {
            let name = d.name();
            if !names.insert(name.to_owned()) {
                p.push(format!("destinations: the name '{name}' is used twice"));
            }
            if d.common().concurrency == 0 {
                p.push(format!("destinations.{name}.concurrency: must be at least 1"));
            }
            match d {
                DestinationConfig::Ga4(g) => g.problems(&mut p),
            }
        }
        for (kind, routes) in &self.catalog {
            if let Err(e) = Kind::parse(kind) {
                p.push(format!("catalog.{kind}: the kind {e}"));
            }
            for (dest, route) in routes {
                if !names.contains(dest) {
                    p.push(format!("catalog.{kind}.{dest}: no destination named '{dest}'"));
                }
                if route.event.trim().is_empty() {
                    p.push(format!("catalog.{kind}.{dest}.event: must not be empty"));
                }
            }
        }
        p
    }

    /// The catalog in the shape planning uses: kind → [(destination, route)].
    pub fn routes(&self) -> BTreeMap<String, Vec<(String, Route)>> {
        self.catalog
            .iter()
            .map(|(kind, r)| (kind.clone(), r.iter().map(|(d, r)| (d.clone(), r.clone())).collect()))
            .collect()
    }

    /// The SQLite file path of `storage.url`.
    pub fn sqlite_path(&self) -> Option<&str> {
        let rest = self.storage.url.strip_prefix("sqlite:")?;
        Some(rest.trim_start_matches("//"))
    }
}

impl Ga4Config {
    fn problems(&self, p: &mut Vec<String>) {
        let n = &self.name;
        let id_ok = self.measurement_id.starts_with("G-")
            && self.measurement_id.len() > 2
            && self.measurement_id[2..].chars().all(|c| c.is_ascii_alphanumeric());
        if !id_ok {
            p.push(format!(
                "destinations.{n}.measurement_id: '{}' is not a web stream id such as G-ABC123",
                self.measurement_id
            ));
        }
        if let Err(e) = self.api_secret.resolve() {
            p.push(format!("destinations.{n}.api_secret ({}): {e}", self.api_secret.reference()));
        }
        if url::Url::parse(&self.base_url).map(|u| !["http", "https"].contains(&u.scheme())).unwrap_or(true) {
            p.push(format!("destinations.{n}.base_url: '{}' is not an http(s) URL", self.base_url));
        }
        if !(1..=25).contains(&self.batch_size) {
            p.push(format!("destinations.{n}.batch_size: GA4 takes 1 to 25 events per request"));
        }
        if !(1..=72).contains(&self.window_hours) {
            p.push(format!("destinations.{n}.window_hours: GA4 accepts events up to 72 hours old"));
        }
    }
}

#[cfg(test)]
mod tests;
