//! `surety events`: one event's timeline (`show`), and the search and list of `find`.

use std::process::ExitCode;

use clap::Subcommand;

use super::{find, load, runtime, ConfigArg};

#[derive(Subcommand)]
pub enum EventsCommand {
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

pub fn run(command: EventsCommand) -> anyhow::Result<ExitCode> {
    match command {
        EventsCommand::Show { id, config, json } => show(&id, &config, json),
        EventsCommand::Find { query, config, json } => find::find(&query, &config, json),
        EventsCommand::List(args) => find::list(args),
    }
}

/// `surety events show ID`: the timeline as text, or JSON.
fn show(id: &str, config: &ConfigArg, json: bool) -> anyhow::Result<ExitCode> {
    let config = load(config)?;
    let view = runtime()?
        .block_on(async { crate::store::open_existing(&config).await?.event(id).await.map_err(anyhow::Error::from) })?;
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
