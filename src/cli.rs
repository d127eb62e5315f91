//! The command line: parsing with clap and one handler per command. Admin commands (`events`,
//! `dlq`) open the ledger named by the configuration directly, so they work whether or not a
//! server is running (ADR 0003).

use std::path::PathBuf;
use std::process::ExitCode;

mod destinations;
mod dlq;
mod events;
mod find;
mod prune;
mod rollups;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, DEFAULT_TOML};

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
    Events(events::EventsCommand),
    /// The dead-letter queue: deliveries that need a person (dead, rejected, in_doubt); replay or settle them.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// A self-contained tour: a small shop's day through a simulator of every platform.
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
    /// The cached day rollups coverage and late arrivals read (serve keeps them).
    #[command(subcommand)]
    Rollups(RollupsCommand),
}

#[derive(Subcommand)]
enum RollupsCommand {
    /// Recompute the stale day rollups now, as serve does every minute.
    Refresh(ConfigArg),
}

#[derive(Subcommand)]
enum DestinationsCommand {
    /// Check each destination's (or NAME's) secrets, credentials and settings against its platform
    /// without creating a conversion; exit 0 when all pass, 1 when one fails, 2 on a usage error.
    Test(destinations::TestArgs),
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
        Command::Events(command) => events::run(command),
        Command::Dlq(command) => dlq::run(command),
        Command::Demo(args) => {
            runtime()?.block_on(crate::demo::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            runtime()?.block_on(crate::bench::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Prune { config, older_than_days, json } => prune::run(&config, older_than_days, json),
        Command::Import(args) => runtime()?.block_on(crate::import::run(args)),
        Command::Validate(args) => crate::import::validate(args),
        Command::Reconcile(args) => crate::reconcile::cli(args),
        Command::Late(args) => crate::reconcile::late::cli(args),
        Command::Coverage(args) => crate::reconcile::coverage::cli(args),
        Command::Rollups(RollupsCommand::Refresh(config)) => rollups::refresh(&config),
        Command::Destinations(DestinationsCommand::Test(args)) => destinations::test(args),
    }
}
