//! `surety dlq`: the deliveries that need a person (dead, rejected, in_doubt) — list them, replay
//! them, or settle them as found on the platform.

use std::process::ExitCode;

use clap::Subcommand;

use super::{load, runtime, ConfigArg};
use crate::core::DeliveryState;
use crate::store::{DeliveryFilter, ReplaySelector, SettleOutcome, SettledAs, Settlement, MAX_SETTLEMENT_NOTE};

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List every delivery that needs a person: dead, rejected and in_doubt (or those in --state).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        destination: Option<String>,
        /// Only this state: dead, rejected, in_doubt (or any other: skipped, delivered, …).
        #[arg(long)]
        state: Option<DeliveryState>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Put dead deliveries (or those in --state, or --id) back in the queue; `--state skipped`
    /// releases what a roll-out held back (validate_only, not_sampled) under the current config.
    Replay {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        destination: Option<String>,
        /// Replay these deliveries (repeatable), whatever their state.
        #[arg(long = "id")]
        ids: Vec<i64>,
        #[arg(long, default_value = "dead")]
        state: DeliveryState,
        /// Only deliveries that ended with this reason (`--state skipped --reason validate_only`
        /// releases what a roll-out held back, and nothing else).
        #[arg(long)]
        reason: Option<String>,
        /// Also replay delivered or skipped deliveries, settled ones too (recorded as forced).
        #[arg(long)]
        force: bool,
        /// Say what would be replayed and what refused, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// End a dead, rejected or in_doubt delivery as you found it on the platform, sending
    /// nothing: recorded with your OS user name, the time and the note.
    Settle {
        #[command(flatten)]
        config: ConfigArg,
        /// The delivery's id (`surety dlq list`).
        #[arg(long)]
        id: i64,
        /// delivered (it arrived: delivered:settled_by_person) or not_delivered (it did not, and
        /// is left so: skipped:settled_by_person).
        #[arg(long = "as", value_name = "delivered|not_delivered")]
        settled_as: SettledAs,
        /// Why: what you checked on the platform.
        #[arg(long)]
        note: Option<String>,
    },
}

pub fn run(command: DlqCommand) -> anyhow::Result<ExitCode> {
    match command {
        DlqCommand::List { config, destination, state, limit, json } => list(&config, destination, state, limit, json),
        DlqCommand::Replay { config, destination, ids, state, reason, force, dry_run, json } => {
            replay(&config, Narrow { destination, state, reason }, ids, Flags { force, dry_run, json })
        }
        DlqCommand::Settle { config, id, settled_as, note } => settle(&config, id, settled_as, note),
    }
}

/// `surety dlq replay`'s switches.
struct Flags {
    force: bool,
    dry_run: bool,
    json: bool,
}

fn list(
    config: &ConfigArg,
    destination: Option<String>,
    state: Option<DeliveryState>,
    limit: u32,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let config = load(config)?;
    let filter =
        DeliveryFilter { state, destination, limit: Some(limit), needs_person: state.is_none(), ..Default::default() };
    let rows = runtime()?.block_on(async {
        crate::store::open_existing(&config).await?.deliveries(filter).await.map_err(anyhow::Error::from)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else if rows.is_empty() {
        match state {
            Some(state) => println!("no {state} deliveries"),
            None => println!("no delivery needs a person (none dead, rejected or in_doubt)"),
        }
    } else {
        println!("{:>8}  {:<16} {:<12} {:<22} {:>8}  event", "id", "destination", "state", "reason", "attempts");
        for d in rows {
            println!(
                "{:>8}  {:<16} {:<12} {:<22} {:>8}  {}",
                d.id,
                d.destination,
                d.state.as_str(),
                d.reason.unwrap_or_default(),
                d.attempts,
                d.event_id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `dlq replay` narrows to besides ids: the destination, the state (when no id is named)
/// and the reason.
struct Narrow {
    destination: Option<String>,
    state: DeliveryState,
    reason: Option<String>,
}

fn replay(config: &ConfigArg, narrow: Narrow, ids: Vec<i64>, flags: Flags) -> anyhow::Result<ExitCode> {
    let Flags { force, dry_run, json } = flags;
    let Narrow { destination, state, reason } = narrow;
    let config = load(config)?;
    let selector = if ids.is_empty() {
        ReplaySelector { destination, state: Some(state), reason, dry_run, ..Default::default() }
    } else {
        ReplaySelector { delivery_ids: ids, destination, reason, dry_run, ..Default::default() }
    };
    let selector = ReplaySelector { by: Some(cli_user()), ..selector };
    let report = runtime()?.block_on(async {
        crate::store::open_existing(&config)
            .await?
            .replay(selector, force, chrono::Utc::now())
            .await
            .map_err(anyhow::Error::from)
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let ids: Vec<String> = report.replayed.iter().map(i64::to_string).collect();
        println!(
            "{} {} deliveries{}{}",
            if dry_run { "would replay" } else { "replayed" },
            report.replayed.len(),
            if force { " (forced)" } else { "" },
            if ids.is_empty() { String::new() } else { format!(": {}", ids.join(", ")) }
        );
        for r in &report.refused {
            println!(
                "{} {} ({}): {}",
                if dry_run { "would refuse" } else { "refused" },
                r.delivery_id,
                r.state,
                r.reason
            );
        }
    }
    Ok(if report.refused.is_empty() || !report.replayed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn settle(config: &ConfigArg, id: i64, settled_as: SettledAs, note: Option<String>) -> anyhow::Result<ExitCode> {
    let config = load(config)?;
    let note = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > MAX_SETTLEMENT_NOTE) {
        anyhow::bail!("--note: at most {MAX_SETTLEMENT_NOTE} characters");
    }
    let settlement = Settlement { delivery_id: id, settled_as, by: cli_user(), note };
    let outcome = runtime()?.block_on(async {
        crate::store::open_existing(&config)
            .await?
            .settle(settlement, chrono::Utc::now())
            .await
            .map_err(anyhow::Error::from)
    })?;
    match outcome {
        SettleOutcome::Settled { state, settlement: s, .. } => {
            let was = s.previous_reason.as_deref().map(|r| format!(":{r}")).unwrap_or_default();
            println!(
                "settled delivery {id} as {settled_as}: now {state}:{}, was {}{was}; by {}",
                crate::core::delivery::reason::SETTLED_BY_PERSON,
                s.previous_state,
                s.by
            );
            Ok(ExitCode::SUCCESS)
        }
        SettleOutcome::NotFound => {
            eprintln!("error: no delivery with id {id}");
            Ok(ExitCode::from(1))
        }
        SettleOutcome::Refused { state, reason, why } => {
            let reason = reason.map(|r| format!(":{r}")).unwrap_or_default();
            eprintln!("error: delivery {id} is {state}{reason}: {why}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Who settles or replays from the command line: `cli:<OS user>` (`USER`, `LOGNAME` or `USERNAME`).
fn cli_user() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{}", user.trim())
}
