//! The command line: parsing with clap and one handler per command. Admin commands (`events`,
//! `dlq`) open the ledger named by the configuration directly, so they work whether or not a
//! server is running (ADR 0003).

use std::path::PathBuf;
use std::process::ExitCode;

mod destinations;
mod find;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, DEFAULT_TOML};
use crate::core::DeliveryState;
use crate::store::{DeliveryFilter, ReplaySelector, SettleOutcome, SettledAs, Settlement, MAX_SETTLEMENT_NOTE};

#[derive(Parser)]
#[command(
    name = "surety",
    version,
    about = "A server-side conversion relay: webhooks and backfill in, a durable ledger, delivery to GA4, Meta, Google Ads and LinkedIn"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
pub struct ConfigArg {
    /// The TOML configuration file (defaults apply without one; SURETY_… variables override).
    #[arg(long, short, env = "SURETY_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the delivery workers.
    Serve(ConfigArg),
    /// Validate a configuration and explain every problem.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the commented default configuration instead.
        #[arg(long)]
        print_default: bool,
    },
    /// Create or upgrade the ledger's schema, then exit.
    Migrate(ConfigArg),
    /// Inspect events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// The dead-letter queue: deliveries that need a person (dead, rejected, in_doubt); replay or settle them.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// A self-contained tour: a small shop's day through simulators of all four platforms.
    Demo(crate::demo::DemoArgs),
    /// Measure ingest and delivery throughput, latency and memory on this machine.
    Bench(crate::bench::BenchArgs),
    /// Delete what the retention policy no longer keeps, now (serve does it every interval).
    Prune {
        #[command(flatten)]
        config: ConfigArg,
        /// Override retention.keep_days for this run.
        #[arg(long)]
        older_than_days: Option<u32>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Backfill canonical events from a CSV or NDJSON file into the ledger (resumable).
    Import(crate::import::ImportArgs),
    /// What `surety import FILE` would do, writing nothing: invalid rows with their lines and what each destination would get.
    Validate(crate::import::ValidateArgs),
    /// Compare the source of truth, the ledger and the platforms' reports; explain every difference.
    Reconcile(crate::reconcile::ReconcileArgs),
    /// Late arrivals per event day: what came after the day ended, what was too late, what changed.
    Late(crate::reconcile::late::LateArgs),
    /// Coverage: what each event carried (ids, click ids, consent) and what became of it per destination.
    Coverage(crate::reconcile::coverage::CoverageArgs),
    /// The configured destinations: check credentials and settings against the platforms.
    #[command(subcommand)]
    Destinations(DestinationsCommand),
}

#[derive(Subcommand)]
enum DestinationsCommand {
    /// Check each destination's (or NAME's) secrets, credentials and settings against its platform
    /// without creating a conversion; exit 0 when all pass, 1 when one fails, 2 on a usage error.
    Test(destinations::TestArgs),
}

#[derive(Subcommand)]
enum EventsCommand {
    /// One event's timeline: what was joined, its deliveries and every attempt.
    Show {
        id: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Find an order's events by an event id, the order (1042 or order:1042), a Stripe, Shopify or
    /// Segment id, an email or phone (hashed before the lookup, never kept) or a click id.
    Find {
        query: String,
        #[command(flatten)]
        config: ConfigArg,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List events, newest first, by kind, source, destination, delivery state and reason, time.
    List(find::ListArgs),
}

#[derive(Subcommand)]
enum DlqCommand {
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

/// Parses the command line, runs the command, maps errors to a message and exit code 1.
pub fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `surety dlq list | head` closes the pipe before the output ends. Rust ignores SIGPIPE, so
/// `println!` then panics; stop quietly instead, with the status a shell reports for a tool that
/// SIGPIPE ended (128 + 13), as `grep` or `yes` would.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message =
            payload.downcast_ref::<String>().map(String::as_str).or_else(|| payload.downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to std") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        default(info)
    }));
}

fn load(arg: &ConfigArg) -> anyhow::Result<Config> {
    Ok(Config::load(arg.config.as_deref())?)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(arg) => {
            let config = load(&arg)?;
            crate::telemetry::init_logging(&config.log.format, &config.log.level);
            runtime()?.block_on(async move {
                let listener = tokio::net::TcpListener::bind(&config.server.listen)
                    .await
                    .with_context(|| format!("cannot listen on {}", config.server.listen))?;
                crate::run(config, listener, crate::serve::shutdown_signal()).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckConfig { config, print_default } => {
            if print_default {
                print!("{DEFAULT_TOML}");
                return Ok(ExitCode::SUCCESS);
            }
            match Config::load(config.config.as_deref()) {
                Ok(c) => {
                    println!(
                        "configuration is valid: storage {}, {} destination(s), {} catalog kind(s)",
                        c.storage.redacted_url(),
                        c.destinations.len(),
                        c.catalog.len()
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Migrate(arg) => {
            let config = load(&arg)?;
            runtime()?.block_on(crate::store::open(&config))?;
            println!("ledger at {} is up to date", config.storage.redacted_url());
            Ok(ExitCode::SUCCESS)
        }
        Command::Events(EventsCommand::Show { id, config, json }) => {
            let config = load(&config)?;
            let view = runtime()?.block_on(async {
                crate::store::open_existing(&config).await?.event(&id).await.map_err(anyhow::Error::from)
            })?;
            match view {
                None => {
                    eprintln!("no event with id {id}");
                    Ok(ExitCode::from(1))
                }
                Some(v) if json => {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    Ok(ExitCode::SUCCESS)
                }
                Some(v) => {
                    print!("{v}");
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Events(EventsCommand::Find { query, config, json }) => find::find(&query, &config, json),
        Command::Events(EventsCommand::List(args)) => find::list(args),
        Command::Dlq(DlqCommand::List { config, destination, state, limit, json }) => {
            let config = load(&config)?;
            let filter = DeliveryFilter {
                state,
                destination,
                limit: Some(limit),
                needs_person: state.is_none(),
                ..Default::default()
            };
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
                println!(
                    "{:>8}  {:<16} {:<12} {:<22} {:>8}  event",
                    "id", "destination", "state", "reason", "attempts"
                );
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
        Command::Dlq(DlqCommand::Replay { config, destination, ids, state, force, dry_run, json }) => {
            let config = load(&config)?;
            let selector = if ids.is_empty() {
                ReplaySelector { destination, state: Some(state), dry_run, ..Default::default() }
            } else {
                ReplaySelector { delivery_ids: ids, destination, dry_run, ..Default::default() }
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
            Ok(if report.refused.is_empty() || !report.replayed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Dlq(DlqCommand::Settle { config, id, settled_as, note }) => {
            let config = load(&config)?;
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
        Command::Demo(args) => {
            runtime()?.block_on(crate::demo::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            runtime()?.block_on(crate::bench::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Prune { config, older_than_days, json } => {
            let mut config = load(&config)?;
            if let Some(days) = older_than_days {
                config.retention.keep_days = days;
                let problems: Vec<String> =
                    config.problems().into_iter().filter(|p| p.starts_with("retention.")).collect();
                if !problems.is_empty() {
                    anyhow::bail!("{}", problems.join("\n"));
                }
            }
            let now = chrono::Utc::now();
            let bodies_before = config.ledger.bodies_cutoff(now);
            let batch = config.retention.batch.max(1);
            let cutoff = config.retention.cutoff(now);
            let total = runtime()?.block_on(async {
                let store = crate::store::open_existing(&config).await?;
                let cancel = tokio_util::sync::CancellationToken::new();
                let bodies = crate::prune_request_bodies_all(store.as_ref(), bodies_before, batch, &cancel).await?;
                let mut total = match cutoff {
                    Some(before) => crate::prune_all(store.as_ref(), before, batch, &cancel).await?,
                    None => crate::store::Pruned::default(),
                };
                total.request_bodies = bodies;
                anyhow::Ok(total)
            })?;
            if !json {
                println!(
                    "dropped {} request bodies sent before {bodies_before} (their hashes are kept; \
                     ledger.keep_request_bodies_days = {})",
                    total.request_bodies, config.ledger.keep_request_bodies_days
                );
            }
            let Some(before) = cutoff else {
                if json {
                    println!("{}", serde_json::to_string_pretty(&total)?);
                } else {
                    println!("retention.keep_days is 0: the ledger keeps every event; no event pruned");
                }
                return Ok(ExitCode::SUCCESS);
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&total)?);
            } else {
                println!(
                    "pruned what ended before {before}: {} events, {} deliveries, {} attempts, {} requests, \
                     {} receipts, {} aliases, {} identities, {} identity captures \
                     (dead and in_doubt deliveries are kept)",
                    total.events,
                    total.deliveries,
                    total.attempts,
                    total.requests,
                    total.receipts,
                    total.aliases,
                    total.identities,
                    total.identity_captures
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import(args) => runtime()?.block_on(crate::import::run(args)),
        Command::Validate(args) => crate::import::validate(args),
        Command::Reconcile(args) => crate::reconcile::cli(args),
        Command::Late(args) => crate::reconcile::late::cli(args),
        Command::Coverage(args) => crate::reconcile::coverage::cli(args),
        Command::Destinations(DestinationsCommand::Test(args)) => destinations::test(args),
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
