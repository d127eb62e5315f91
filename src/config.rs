//! Layered configuration: the commented defaults shipped in the binary, then a TOML file, then
//! `SURETY_…` environment variables. Validated as a whole at start; secrets cannot be printed.

use std::collections::BTreeMap;
use std::path::Path;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

pub mod alerts;
mod check;
mod common;
pub mod rollout;
mod secret;
mod section;
pub mod sources;
mod structure;

pub use self::common::{Common, ConsentConfig};
pub use self::rollout::Mode;
pub use self::secret::{Secret, SecretValue, MIN_SECRET_CHARS};
pub use self::section::{problems_of, DestinationConfig, ReadSection, Section, SectionReader, SectionValue};
pub use self::sources::SourcesConfig;
use crate::core::retry::RetryPolicy;
use crate::core::Route;

/// The commented default configuration, every key documented (`surety check-config --print-default`).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// The sections an environment variable may set (`SURETY_<SECTION>__<KEY>`).
const SECTIONS: [&str; 9] = ["storage", "server", "auth", "retry", "worker", "log", "sources", "retention", "ledger"];

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub storage: StorageConfig,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub retry: RetryPolicy,
    pub worker: WorkerConfig,
    pub log: LogConfig,
    pub retention: RetentionConfig,
    #[serde(default)]
    pub ledger: LedgerConfig,
    #[serde(default)]
    pub sources: SourcesConfig,
    /// `[[destinations]]`, each read by its platform's [`SectionReader`] (`structure::parse`).
    #[serde(default, skip_deserializing)]
    pub destinations: Vec<DestinationConfig>,
    /// kind → destination name → route.
    #[serde(default)]
    pub catalog: BTreeMap<String, BTreeMap<String, Route>>,
    /// Where alert messages go, and whether this process evaluates the rules.
    #[serde(default)]
    pub alerting: alerts::AlertingConfig,
    /// `[[alerts]]`: what needs a person (`crate::alerts`).
    #[serde(default)]
    pub alerts: Vec<alerts::AlertRule>,
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

impl StorageConfig {
    /// The URL with any password replaced, for messages and logs.
    pub fn redacted_url(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("****"));
                u.to_string()
            }
            _ => self.url.clone(),
        }
    }
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
    /// A request's headers must arrive within this time of its first byte.
    pub header_timeout_ms: u64,
    /// A request's body must arrive within this time of its headers.
    pub body_timeout_ms: u64,
    /// A kept-alive connection with no request in progress is closed after this long unused.
    pub idle_timeout_ms: u64,
    /// Most connections open at once; more wait in the listen backlog (also kept under the
    /// process's file-descriptor limit).
    pub max_connections: usize,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub ingest_tokens: Vec<Secret>,
    #[serde(default)]
    pub admin_tokens: Vec<Secret>,
    /// Keys that `capture.js` sends from the browser: public by design, they may only post
    /// identities, and what they post never overwrites what the bridge already holds.
    #[serde(default)]
    pub capture_keys: Vec<String>,
    /// Origins (`https://shop.example`) whose pages may post identities (CORS).
    #[serde(default)]
    pub capture_origins: Vec<String>,
    /// Identity captures with a capture key that one client address may post per minute.
    #[serde(default = "default_capture_per_minute")]
    pub capture_per_minute: u32,
}

fn default_capture_per_minute() -> u32 {
    60
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
    /// Consecutive failed requests that open a destination's circuit.
    pub breaker_threshold: u32,
    /// First open period of the circuit; doubles at each re-opening up to the maximum.
    pub breaker_cooldown_ms: u64,
    pub breaker_max_cooldown_ms: u64,
    /// How long a destination pauses after the platform refused our credentials.
    pub halt_cooldown_secs: u64,
}

impl WorkerConfig {
    pub fn breaker(&self) -> crate::core::retry::BreakerPolicy {
        crate::core::retry::BreakerPolicy {
            threshold: self.breaker_threshold.max(1),
            cooldown: std::time::Duration::from_millis(self.breaker_cooldown_ms),
            max_cooldown: std::time::Duration::from_millis(self.breaker_max_cooldown_ms.max(self.breaker_cooldown_ms)),
            halt_cooldown: std::time::Duration::from_secs(self.halt_cooldown_secs),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `surety=debug`; `RUST_LOG` wins.
    pub level: String,
}

/// How long the ledger keeps what is finished (README "Retention").
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days after which ended events and their history are deleted; 0 keeps everything.
    pub keep_days: u32,
    /// How often `serve` prunes.
    pub interval_secs: u64,
    /// Events deleted per transaction, so pruning never holds the writer long.
    pub batch: usize,
}

impl RetentionConfig {
    /// Events received before this are pruned, if retention is on.
    pub fn cutoff(&self, now: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        (self.keep_days > 0).then(|| now - chrono::Duration::days(i64::from(self.keep_days)))
    }
}

/// What the ledger keeps beside events and their outcomes.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// Days the exact body of each request sent to a platform is kept (shown on the event page);
    /// after that only its SHA-256 stays. 0 keeps no bodies.
    pub keep_request_bodies_days: u32,
}

impl LedgerConfig {
    /// The longest `keep_request_bodies_days` accepted: ten years.
    pub const MAX_KEEP_DAYS: u32 = 3650;

    /// Bodies of requests sent before this are dropped.
    pub fn bodies_cutoff(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        now - chrono::Duration::days(i64::from(self.keep_request_bodies_days.min(Self::MAX_KEEP_DAYS)))
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { keep_request_bodies_days: 7 }
    }
}

/// Loading or validating failed; `problems` lists every one found.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", problems.join("\n  - "))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Whether loading reads every secret, or leaves out those only sending needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets {
    Read,
    /// For a command that plans but never sends (`surety import`): a destination's secret that
    /// cannot be read is no problem (its reference must still be well formed, and every other
    /// check stands), since nothing is sent with it.
    SkipDestinations,
}

/// Loading. `Config::load`, `Config::load_for_planning` and `Config::from_toml` are defined in
/// `crate::platforms` (which sits above this module and knows every platform's section): they
/// call these with the platform list's [`SectionReader`].
impl Config {
    /// Defaults, then the file (if any), then `SURETY_…` variables (`__` separates levels:
    /// `SURETY_STORAGE__URL`, `SURETY_SERVER__LISTEN`).
    pub fn load_with(file: Option<&Path>, sections: &SectionReader, secrets: Secrets) -> Result<Self, ConfigError> {
        Self::from_figment(Self::layered(file)?, sections, secrets)
    }

    fn layered(file: Option<&Path>) -> Result<Figment, ConfigError> {
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
        Ok(figment)
    }

    /// Parses a TOML text over the defaults, without the environment (tests, `surety demo`).
    pub fn from_toml_with(text: &str, sections: &SectionReader) -> Result<Self, ConfigError> {
        let figment = Figment::from(Toml::string(DEFAULT_TOML)).merge(Toml::string(text));
        Self::from_figment(figment, sections, Secrets::Read)
    }

    /// Structural problems first (every one: see `structure`), then, if the rest parses, every
    /// semantic problem of what was written correctly.
    fn from_figment(figment: Figment, sections: &SectionReader, secrets: Secrets) -> Result<Self, ConfigError> {
        let parsed = structure::parse(&figment, sections);
        let mut problems = parsed.problems;
        let Some((mut config, figment)) = parsed.config else {
            return Err(ConfigError { problems });
        };
        config.default_consent_purposes(&figment);
        problems.extend(config.problems_with(secrets, &parsed.dropped_destinations));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Ad platforms need `ad_user_data` consent to receive anything (their events are ad user data
    /// as a whole); GA4 needs `analytics`. Applies that default where a destination's
    /// `consent.purpose` is not written.
    fn default_consent_purposes(&mut self, figment: &Figment) {
        let written: Vec<bool> = figment
            .find_value("destinations")
            .ok()
            .and_then(|v| v.into_array())
            .map(|list| {
                list.iter()
                    .map(|d| {
                        d.as_dict()
                            .and_then(|d| d.get("consent"))
                            .and_then(|c| c.as_dict())
                            .is_some_and(|c| c.contains_key("purpose"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (i, d) in self.destinations.iter_mut().enumerate() {
            if !written.get(i).copied().unwrap_or(false) {
                let purpose = d.default_purpose();
                d.common_mut().consent.purpose = purpose;
            }
        }
    }

    /// The catalog in the shape planning uses: kind → [(destination, route)].
    pub fn routes(&self) -> BTreeMap<String, Vec<(String, Route)>> {
        self.catalog
            .iter()
            .map(|(kind, r)| (kind.clone(), r.iter().map(|(d, r)| (d.clone(), r.clone())).collect()))
            .collect()
    }

    /// The SQLite file path of `storage.url`.
    /// A shared PostgreSQL ledger (`postgres://…` or `postgresql://…`).
    pub fn is_postgres(&self) -> bool {
        self.storage.url.starts_with("postgres://") || self.storage.url.starts_with("postgresql://")
    }

    pub fn sqlite_path(&self) -> Option<&str> {
        let rest = self.storage.url.strip_prefix("sqlite:")?;
        Some(rest.trim_start_matches("//"))
    }
}

#[cfg(test)]
mod tests;
