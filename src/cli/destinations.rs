//! `surety destinations test [NAME]`: each configured destination's secrets resolved and its
//! credentials and settings checked against the platform without creating a conversion (GA4's
//! validation server, a Meta test event, the Data Manager API's `validateOnly`, a LinkedIn
//! conversion rule lookup: each platform's `Destination::check`). Exit 0 when every check
//! passes, 1 when one fails, 2 on a usage or configuration error.

use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use super::{runtime, ConfigArg};
use crate::config::{Config, DestinationConfig};
use crate::core::Route;
use crate::delivery::Check;

#[derive(Args)]
pub struct TestArgs {
    /// Only this destination (its `name`); all of them without it.
    name: Option<String>,
    #[command(flatten)]
    config: ConfigArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// What one destination's test found (`--json`).
#[derive(Debug, Serialize)]
pub struct Tested {
    pub destination: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub ok: bool,
    pub checks: Vec<Check>,
}

pub fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    // Secrets are resolved per destination below, so one that cannot be read is that
    // destination's failed check, not a stop for the others.
    let config = match Config::load_for_planning(args.config.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let chosen: Vec<&DestinationConfig> =
        config.destinations.iter().filter(|d| args.name.as_deref().is_none_or(|n| d.name() == n)).collect();
    if chosen.is_empty() {
        let names: Vec<&str> = config.destinations.iter().map(|d| d.name()).collect();
        match &args.name {
            Some(n) if names.is_empty() => eprintln!("error: no destination named '{n}': none is configured"),
            Some(n) => eprintln!("error: no destination named '{n}' (configured: {})", names.join(", ")),
            None => eprintln!("error: no destination is configured: nothing to test ([[destinations]] in the config)"),
        }
        return Ok(ExitCode::from(2));
    }
    let tested = runtime()?.block_on(async {
        let mut out = Vec::with_capacity(chosen.len());
        for d in chosen {
            out.push(test_one(&config, d).await);
        }
        out
    });
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tested)?);
    } else {
        print!("{}", render(&tested));
    }
    Ok(if tested.iter().all(|t| t.ok) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// One destination: its secrets and adapter, then its platform's checks.
pub async fn test_one(config: &Config, d: &DestinationConfig) -> Tested {
    let routes: Vec<Route> =
        config.catalog.values().filter_map(|routes| routes.get(d.name())).cloned().collect::<Vec<_>>();
    let common = d.common();
    let mut settings = format!("mode {}", common.mode.as_str());
    if let Some(sample) = &common.sample {
        settings.push_str(&format!("; sample: {}", sample.describe()));
    }
    settings.push_str(&format!("; {} catalog route(s)", routes.len()));
    let mut checks = Vec::new();
    match crate::platforms::build_one(d) {
        Ok(adapter) => {
            checks.push(Check::new("secrets and settings", true, format!("resolved and read: {settings}")));
            checks.extend(adapter.check(&routes).await);
        }
        Err(e) => checks.push(Check::new("secrets and settings", false, format!("{e:#}"))),
    }
    Tested {
        destination: d.name().to_owned(),
        type_name: d.type_name().to_owned(),
        ok: checks.iter().all(|c| c.ok),
        checks,
    }
}

/// The human text: one block per destination, one line per check, and a summary.
pub fn render(tested: &[Tested]) -> String {
    let mut out = String::new();
    for t in tested {
        out.push_str(&format!("{} ({}): {}\n", t.destination, t.type_name, if t.ok { "ok" } else { "FAILED" }));
        for c in &t.checks {
            out.push_str(&format!("  {:<4}  {}: {}\n", if c.ok { "ok" } else { "FAIL" }, c.check, c.detail));
        }
    }
    let passed = tested.iter().filter(|t| t.ok).count();
    out.push_str(&format!("{passed} of {} destination(s) passed every check\n", tested.len()));
    out
}
