//! `surety demo`: a small shop's day played through a real Surety against the GA4 simulator.
//!
//! It starts the service (`crate::run`, SQLite in a temp folder or `--db`) with the built-in GA4
//! simulator as destination `ga4-web`, plays the day through the public HTTP API only
//! ([`script`]), reads every event back and prints what happened and totals that add up
//! ([`report`]), then leaves the service up until ctrl-c (or exits with `--exit`). The tour
//! checks itself: an outcome other than the one described makes it fail.

mod api;
mod report;
mod script;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// The demo's GA4 destination.
pub const DESTINATION: &str = "ga4-web";

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Exit after the tour instead of leaving the service up.
    #[arg(long)]
    pub exit: bool,
    /// Where the API listens; if the port is taken, a free one is used instead.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Keep the ledger in this SQLite file instead of a temp folder (it is kept afterwards).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // The tour narrates what the logs would say; RUST_LOG=info shows them as well.
    crate::telemetry::init_logging("text", "error");
    let sim = crate::sim::ga4::start().await.context("cannot start the GA4 simulator")?;
    let dir = tempfile::Builder::new().prefix("surety-demo-").tempdir().context("cannot create a temp folder")?;
    let db = args.db.clone().unwrap_or_else(|| dir.path().join("demo.db"));
    let ingest_token = hex::encode(rand::random::<[u8; 12]>());
    let admin_token = hex::encode(rand::random::<[u8; 12]>());
    let secrets = Secrets::write(dir.path(), &ingest_token, &admin_token)?;
    let listener = bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let toml = config_toml(&db, addr, &secrets, &sim.base_url);
    let config = Config::from_toml(&toml)?;

    intro(addr, &db, &sim.base_url);
    let stop = CancellationToken::new();
    let mut server = tokio::spawn(crate::run(config, listener, stop.clone().cancelled_owned()));
    let api = api::Api::new(format!("http://{addr}"), ingest_token, admin_token)?;

    // Listen for ctrl-c from the start, so an interrupted tour still stops cleanly.
    let signal = crate::cli::shutdown_signal();
    tokio::pin!(signal);
    let tour = async {
        wait_ready(&api, &server).await?;
        let tour = script::play(&api, &sim).await?;
        report::print(&api, &sim, &tour).await
    };
    let (outcome, interrupted) = tokio::select! {
        o = tour => (o, false),
        _ = &mut signal => (Err(anyhow::anyhow!("interrupted")), true),
    };

    let outcome = match outcome {
        Ok(mismatches) if mismatches.is_empty() => {
            println!("\nThe tour went as described: every event ended as expected.");
            Ok(())
        }
        Ok(mismatches) => {
            println!("\nThe tour did NOT go as described:");
            for m in &mismatches {
                println!("  ✗ {m}");
            }
            Err(anyhow::anyhow!("{} outcome(s) differ from the tour's description", mismatches.len()))
        }
        Err(e) => Err(e),
    };

    if !args.exit && !interrupted && !server.is_finished() {
        hints(&api, &db, args.db.is_some());
        tokio::select! {
            _ = &mut signal => println!("\nstopping…"),
            _ = &mut server => {}
        }
    }
    stop.cancel();
    let stopped = if server.is_finished() {
        server.await
    } else {
        tokio::time::timeout(Duration::from_secs(15), server).await.context("Surety did not stop within 15 s")?
    };
    sim.shutdown().await;
    stopped.context("the Surety task failed")?.context("Surety stopped with an error")?;
    outcome
}

/// Binds `addr`, or the same address on a free port if it is taken.
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let fallback = SocketAddr::new(addr.ip(), 0);
            let l = TcpListener::bind(fallback).await.with_context(|| format!("cannot listen on {fallback}"))?;
            println!("({addr} is in use; listening on {} instead)", l.local_addr()?);
            Ok(l)
        }
        Err(e) => Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
}

/// Secrets live in files of the temp folder: never inline in the configuration, and no
/// process-wide environment variable to set.
struct Secrets {
    ingest: PathBuf,
    admin: PathBuf,
    ga4: PathBuf,
}

impl Secrets {
    fn write(dir: &Path, ingest_token: &str, admin_token: &str) -> anyhow::Result<Self> {
        let s =
            Self { ingest: dir.join("ingest_token"), admin: dir.join("admin_token"), ga4: dir.join("ga4_api_secret") };
        for (path, value) in [(&s.ingest, ingest_token), (&s.admin, admin_token), (&s.ga4, "demo-ga4-secret")] {
            std::fs::write(path, value).with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(s)
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn file_secret(p: &Path) -> String {
    quote(&format!("file:{}", p.display()))
}

/// The demo's configuration: fast retries so the outage plays out in seconds, and a small
/// shop's catalog.
fn config_toml(db: &Path, addr: SocketAddr, secrets: &Secrets, ga4_base_url: &str) -> String {
    format!(
        r#"[storage]
url = {db}

[server]
listen = "{addr}"

[auth]
ingest_tokens = [{ingest}]
admin_tokens = [{admin}]

[retry]
max_attempts = 10
base_delay_ms = 400
max_delay_ms = 2000

[worker]
poll_interval_ms = 100
breaker_threshold = 3
breaker_cooldown_ms = 1000
breaker_max_cooldown_ms = 4000

[log]
level = "error"

[[destinations]]
name = "{DESTINATION}"
type = "ga4"
measurement_id = "G-DEMO2024"
api_secret = {ga4}
base_url = {base}
validate_with_debug_endpoint = true
timeout_ms = 2000

# The shop's browser tag sends no purchase: bank transfers are confirmed days after checkout, so
# the payment provider's confirmation is the one source of purchases.
[catalog.order_paid]
{DESTINATION} = {{ event = "purchase", browser_tracked = false }}

[catalog.refund_completed]
{DESTINATION} = {{ event = "refund" }}

# Revenue at risk: a custom GA4 event, so chargebacks can be analysed next to purchases.
[catalog.chargeback_opened]
{DESTINATION} = {{ event = "chargeback" }}

[catalog.lead_qualified]
{DESTINATION} = {{ event = "qualify_lead" }}

# fulfillment_failed is deliberately absent: an operational state, kept in the ledger only.
"#,
        db = quote(&format!("sqlite://{}", db.display())),
        ingest = file_secret(&secrets.ingest),
        admin = file_secret(&secrets.admin),
        ga4 = file_secret(&secrets.ga4),
        base = quote(ga4_base_url),
    )
}

fn intro(addr: SocketAddr, db: &Path, ga4: &str) {
    println!("Surety demo: a small shop's day, played through Surety's real HTTP API.\n");
    println!("  Surety     http://{addr}   ledger: {} (SQLite)", db.display());
    println!("  GA4        a built-in simulator at {ga4} stands in for Google Analytics:");
    println!("             destination '{DESTINATION}', measurement id G-DEMO2024; each batch is checked at");
    println!("             /debug/mp/collect before it is sent, so a delivery can say \"accepted\", not just \"sent\"");
    println!("  retries    fast for the demo: backoff from 0.4 s, at most 2 s apart, 10 attempts; the circuit");
    println!("             opens after 3 failed requests in a row, for 1 s at first");
    println!("\n  The catalog: which business events go to GA4, and as what");
    println!("    order_paid          → purchase      (the browser tag sends no purchase: bank transfers");
    println!("                                         are confirmed days after checkout)");
    println!("    refund_completed    → refund");
    println!("    chargeback_opened   → chargeback    (a custom event)");
    println!("    lead_qualified      → qualify_lead");
    println!("    fulfillment_failed  → nothing       (an operational state: kept in the ledger, never sent)");
    println!("\n  Before sending, each delivery is checked in order: consent, browser overlap, identity (GA4");
    println!("  needs a client_id), time window (GA4 takes events up to 72 h old), GA4's rules.");
}

async fn wait_ready(api: &api::Api, server: &tokio::task::JoinHandle<anyhow::Result<()>>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if server.is_finished() {
            anyhow::bail!("Surety stopped while starting");
        }
        if api.get_text("/readyz").await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("Surety was not ready within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hints(api: &api::Api, db: &Path, kept: bool) {
    let auth = format!("-H 'authorization: Bearer {}'", api.admin_token);
    println!("\nSurety is still running at {}. Look around (admin token {}):", api.base, api.admin_token);
    println!("  curl {auth} {}/v1/events/order:1042:order_paid", api.base);
    println!("  curl {auth} '{}/v1/deliveries?state=skipped'", api.base);
    println!("  curl {}/metrics", api.base);
    println!(
        "  post your own: curl {} -H 'authorization: Bearer {}' -H 'content-type: application/json' \\\n    \
         -d '{{\"kind\":\"order_paid\",\"occurred_at\":\"{}\",\"subject\":{{\"type\":\"order\",\"id\":\"2001\"}},\"value\":9.5,\"currency\":\"EUR\",\"identity\":{{\"client_id\":\"555.1700000000\"}},\"consent\":{{\"analytics\":\"granted\"}}}}'",
        format_args!("{}/v1/events", api.base),
        api.ingest_token,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    if kept {
        println!("  the ledger stays in {} after exit (surety events show ID --config … reads it)", db.display());
    } else {
        println!("  the ledger lives in a temp folder and is removed at exit (use --db PATH to keep it)");
    }
    println!("Press ctrl-c to stop.");
}
