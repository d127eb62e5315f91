//! The semantic checks of a configuration that parsed: every problem, so `check-config` can
//! explain them all at once.

use std::collections::BTreeSet;

use super::{alerts, section, Config, Secrets};
use crate::core::Kind;

/// The longest `retry.max_age_secs` accepted: ten years.
const MAX_AGE_LIMIT_SECS: u64 = 10 * 365 * 24 * 3600;

impl Config {
    /// Every semantic problem, so `check-config` can explain them all at once.
    pub fn problems(&self) -> Vec<String> {
        self.problems_with(Secrets::Read, &[])
    }

    /// As [`Config::problems`]; with [`Secrets::SkipDestinations`], a destination's secret is not
    /// read; a catalog route to a destination in `dropped` (one the structural pass had to leave
    /// out, already reported) is not a problem of its own.
    pub(super) fn problems_with(&self, secrets: Secrets, dropped: &[String]) -> Vec<String> {
        let mut p = Vec::new();
        if !(self.storage.url.starts_with("sqlite:") || self.is_postgres()) {
            p.push(format!(
                "storage.url: '{}' is neither sqlite://PATH nor postgres://USER@HOST:PORT/DATABASE",
                self.storage.redacted_url()
            ));
        }
        if !["full", "normal"].contains(&self.storage.sqlite_synchronous.as_str()) {
            p.push("storage.sqlite_synchronous: must be \"full\" or \"normal\"".into());
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            p.push(format!("server.listen: '{}' is not an address such as 127.0.0.1:8080", self.server.listen));
        }
        for (key, ms) in [
            ("header_timeout_ms", self.server.header_timeout_ms),
            ("body_timeout_ms", self.server.body_timeout_ms),
            ("idle_timeout_ms", self.server.idle_timeout_ms),
        ] {
            if ms == 0 {
                p.push(format!("server.{key}: must be at least 1"));
            }
        }
        if self.server.max_connections == 0 {
            p.push("server.max_connections: must be at least 1".into());
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
        for origin in &self.auth.capture_origins {
            let ok = url::Url::parse(origin)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.origin().ascii_serialization() == *origin);
            if !ok {
                p.push(format!("auth.capture_origins: '{origin}' is not an origin such as https://shop.example"));
            }
        }
        if self.auth.capture_per_minute == 0 {
            p.push("auth.capture_per_minute: must be at least 1".into());
        }
        self.sources.problems(&mut p);
        if self.ledger.keep_request_bodies_days > super::LedgerConfig::MAX_KEEP_DAYS {
            p.push(format!(
                "ledger.keep_request_bodies_days: {} is more than {} (ten years)",
                self.ledger.keep_request_bodies_days,
                super::LedgerConfig::MAX_KEEP_DAYS
            ));
        }
        if self.retention.keep_days > 0 {
            if self.retention.batch == 0 || self.retention.interval_secs == 0 {
                p.push("retention.batch and retention.interval_secs: must be at least 1".into());
            }
            // A pruned event that arrives again is a new event to the ledger: it must be outside
            // every window by then, or it would be sent twice.
            for d in &self.destinations {
                let window_days = d.window_days();
                if u64::from(self.retention.keep_days) <= window_days {
                    p.push(format!(
                        "retention.keep_days: {} does not exceed destination '{}''s {window_days}-day window; a pruned \
                         event arriving again could be sent twice (use more than {window_days}, or 0 to keep everything)",
                        self.retention.keep_days,
                        d.name()
                    ));
                }
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
            // A wait must end before the age limit, so it ends as `no_identity`, never as dead.
            if d.common().identity_wait_secs >= self.retry.max_age_secs.max(1) {
                p.push(format!("destinations.{name}.identity_wait_secs: must be less than retry.max_age_secs"));
            }
            if let Some(sample) = &d.common().sample {
                let routed: Vec<&str> = self
                    .catalog
                    .iter()
                    .filter(|(_, routes)| routes.contains_key(name))
                    .map(|(kind, _)| kind.as_str())
                    .collect();
                super::rollout::sample_problems(name, sample, &routed, &mut p);
            }
            section::problems_of(&**d, secrets, &mut p);
        }
        for (kind, routes) in &self.catalog {
            if let Err(e) = Kind::parse(kind) {
                p.push(format!("catalog.{kind}: the kind {e}"));
            }
            for (dest, route) in routes {
                match self.destinations.iter().find(|d| d.name() == dest) {
                    None if dropped.contains(dest) => {}
                    None => p.push(format!("catalog.{kind}.{dest}: no destination named '{dest}'")),
                    Some(d) => d.route_problems(kind, route, &format!("catalog.{kind}.{dest}"), &mut p),
                }
                if route.event.trim().is_empty() {
                    p.push(format!("catalog.{kind}.{dest}.event: must not be empty"));
                }
            }
        }
        // A destination left out by the structural pass is known; its own problem is reported.
        let names: Vec<&str> =
            self.destinations.iter().map(|d| d.name()).chain(dropped.iter().map(String::as_str)).collect();
        p.extend(alerts::problems(&self.alerting, &self.alerts, &names));
        p
    }
}
