//! `surety demo`: a small shop's day played through a real Surety against a simulator of every
//! platform of `platforms::ALL`.
//!
//! It starts the simulators and the service (`crate::run`, SQLite in a temp folder or `--db`) with
//! one destination per simulator ([`setup`]; each platform writes its own section and says its
//! routes, `platforms::Simulator` and `platforms::Showcase`), plays the day through the public HTTP API only
//! ([`script`], [`outage`]), reads every event back and prints what happened per destination and
//! totals that add up ([`report`]), then leaves the service up until ctrl-c (or exits with
//! `--exit`). The tour checks itself: an outcome other than the one described makes it fail.

mod api;
mod outage;
mod report;
mod script;
mod setup;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::setup::{Secrets, Sims, KINDS};
use crate::config::Config;
use crate::platforms::ALL;

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
    let mut demo = Demo::start(&args).await?;

    // Listen for ctrl-c from the start, so an interrupted tour still stops cleanly.
    let signal = crate::serve::shutdown_signal();
    tokio::pin!(signal);
    let (outcome, interrupted) = tokio::select! {
        o = demo.tour() => (o, false),
        _ = &mut signal => (Err(anyhow::anyhow!("interrupted")), true),
    };

    let outcome = match outcome {
        Ok(summary) if summary.mismatches.is_empty() => {
            let delivered: Vec<String> =
                summary.by_destination.iter().map(|(d, t)| format!("{d} {}", t.count("delivered"))).collect();
            println!(
                "\nThe tour went as described: every event ended as expected at every destination \
                 (delivered: {}).",
                delivered.join(", ")
            );
            Ok(())
        }
        Ok(summary) => {
            println!("\nThe tour did NOT go as described:");
            for m in &summary.mismatches {
                println!("  ✗ {m}");
            }
            Err(anyhow::anyhow!("{} outcome(s) differ from the tour's description", summary.mismatches.len()))
        }
        Err(e) => Err(e),
    };

    if !args.exit && !interrupted && !demo.server.is_finished() {
        hints(&demo.api, &demo.db, &demo.config_file, args.db.is_some(), &demo.sims);
        tokio::select! {
            _ = &mut signal => println!("\nstopping…"),
            _ = &mut demo.server => {}
        }
    }
    demo.stop().await?;
    outcome
}

/// A running demo: the simulators, Surety serving on them, and a client of its API.
struct Demo {
    sims: Sims,
    api: api::Api,
    db: PathBuf,
    /// The demo's configuration, written out so commands in a second shell can read the ledger.
    config_file: PathBuf,
    stop: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts the simulators and Surety, and prints the introduction.
    async fn start(args: &DemoArgs) -> anyhow::Result<Self> {
        let sims = Sims::start().await?;
        let dir = tempfile::Builder::new().prefix("surety-demo-").tempdir().context("cannot create a temp folder")?;
        let db = args.db.clone().unwrap_or_else(|| dir.path().join("demo.db"));
        let ingest_token = hex::encode(rand::random::<[u8; 12]>());
        let admin_token = hex::encode(rand::random::<[u8; 12]>());
        let secrets = Secrets::write(dir.path(), &ingest_token, &admin_token)?;
        let listener = bind(args.listen).await?;
        let addr = listener.local_addr()?;
        let config_text = setup::config_toml(&db, addr, &secrets, &sims)?;
        let config = Config::from_toml(&config_text)?;
        let config_file = dir.path().join("surety.toml");
        std::fs::write(&config_file, &config_text)
            .with_context(|| format!("cannot write {}", config_file.display()))?;
        intro(addr, &db, &sims);
        let stop = CancellationToken::new();
        let server = tokio::spawn(crate::run(config, listener, stop.clone().cancelled_owned()));
        let api = api::Api::new(format!("http://{addr}"), ingest_token, admin_token)?;
        Ok(Self { sims, api, db, config_file, stop, server, _dir: dir })
    }

    /// Plays the day and reports on it.
    async fn tour(&self) -> anyhow::Result<report::Summary> {
        wait_ready(&self.api, &self.server).await?;
        let (mut tour, ids, now) = script::play(&self.api).await?;
        outage::play(&self.api, &self.sims, &mut tour, &ids, now).await?;
        script::confirmations(&self.api, &mut tour).await?;
        report::print(&self.api, &self.sims, &tour).await
    }

    /// Stops Surety (bounded) and the simulators.
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        let stopped = if self.server.is_finished() {
            self.server.await
        } else {
            tokio::time::timeout(Duration::from_secs(15), self.server)
                .await
                .context("Surety did not stop within 15 s")?
        };
        self.sims.shutdown().await;
        stopped.context("the Surety task failed")?.context("Surety stopped with an error")
    }
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

fn intro(addr: SocketAddr, db: &Path, sims: &Sims) {
    println!("Surety demo: a small shop's day, played through Surety's real HTTP API.\n");
    println!("  Surety      http://{addr}   ledger: {} (SQLite)", db.display());
    println!(
        "  {} built-in simulators stand in for the platforms, one destination each:",
        count_word(sims.lanes.len())
    );
    for lane in &sims.lanes {
        for (i, line) in lane.sim.introduce().iter().enumerate() {
            println!("  {:<11} {line}", if i == 0 { lane.name } else { "" });
        }
    }
    println!("  retries     fast for the demo: backoff from 0.4 s, at most 2 s apart, 10 attempts; a destination's");
    println!("              circuit opens after 3 failed requests in a row, for 1 s at first");
    println!("\n  The catalog: which business events go where, and as what");
    let widths: Vec<usize> = sims
        .lanes
        .iter()
        .map(|l| l.platform.showcase.routes.iter().map(|r| r.shown.len()).max().unwrap_or(0).max(l.name.len()) + 3)
        .collect();
    let row = |first: &str, cells: Vec<&str>| {
        let mut line = format!("    {first:<20}");
        for (cell, width) in cells.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}"));
        }
        println!("{}", line.trim_end());
    };
    row("", sims.lanes.iter().map(|l| l.name).collect());
    for kind in KINDS {
        row(kind, sims.lanes.iter().map(|l| l.platform.showcase.route(kind).map_or("—", |r| r.shown)).collect());
    }
    println!("    fulfillment_failed  nothing: an operational state, kept in the ledger, never sent");
    println!("  (no browser tag sends purchases: bank transfers are confirmed days after checkout)");
    let by = |what: fn(&crate::platforms::Showcase) -> String| {
        let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
        for p in ALL {
            let key = what(&p.showcase);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, labels)) => labels.push(p.label),
                None => groups.push((key, vec![p.label])),
            }
        }
        groups.iter().map(|(k, labels)| format!("{}: {k}", labels.join(", "))).collect::<Vec<_>>().join("; ")
    };
    println!("\n  Before sending, each delivery is checked in order:");
    println!("    consent ({}), browser overlap,", by(|s| s.consent.to_owned()));
    println!("    identity ({}),", by(|s| s.identity.to_owned()));
    println!("    time window ({}), the platform's rules.", by(|s| window(s.window_hours)));
}

/// `72 h`, or `7 days` when whole days.
fn window(hours: u32) -> String {
    if hours.is_multiple_of(24) && hours > 72 {
        format!("{} days", hours / 24)
    } else {
        format!("{hours} h")
    }
}

/// `Four`, as a sentence starts.
fn count_word(n: usize) -> String {
    const WORDS: [&str; 9] = ["No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight"];
    WORDS.get(n).map_or_else(|| n.to_string(), |w| (*w).to_owned())
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

fn hints(api: &api::Api, db: &Path, config_file: &Path, kept: bool, sims: &Sims) {
    // A destination worth a look on its own: one that confirms later, if any.
    let lanes = &sims.lanes;
    let shown = lanes.iter().find(|l| l.platform.showcase.confirms_later.is_some()).or(lanes.first());
    let auth = format!("-H 'authorization: Bearer {}'", api.admin_token);
    println!("\nSurety is still running at {}. Look around (admin token {}):", api.base, api.admin_token);
    println!("  the dashboard: open {}/ in a browser (any user name, the admin token as password)", api.base);
    println!("  curl {auth} {}/v1/events/order:1042:order_paid", api.base);
    println!("  curl {auth} '{}/v1/deliveries?state=skipped'", api.base);
    if let Some(lane) = shown {
        println!("  curl {auth} '{}/v1/deliveries?destination={}'", api.base, lane.name);
    }
    println!("  curl {}/metrics", api.base);
    println!(
        "  post your own: curl {} -H 'authorization: Bearer {}' -H 'content-type: application/json' \\\n    \
         -d '{{\"kind\":\"order_paid\",\"occurred_at\":\"{}\",\"subject\":{{\"type\":\"order\",\"id\":\"2001\"}},\"value\":9.5,\"currency\":\"EUR\",\"identity\":{{\"client_id\":\"555.1700000000\",\"email\":\"you@example.com\"}},\"consent\":{{\"analytics\":\"granted\",\"ad_user_data\":\"granted\"}}}}'",
        format_args!("{}/v1/events", api.base),
        api.ingest_token,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    let cfg = config_file.display();
    println!("\nFrom a second shell, the command line reads the same ledger (no token needed: it opens the file):");
    println!("  surety events show order:1042:order_paid --config {cfg}");
    println!("  surety dlq list --config {cfg}");
    println!("  surety dlq list --state skipped --config {cfg}");
    println!("  surety dlq replay --id ID --config {cfg}      (after a fix; `dlq list` shows the ids)");
    if kept {
        println!(
            "The ledger stays in {} after exit; then: SURETY_STORAGE__URL=sqlite://{} surety events show ID",
            db.display(),
            db.display()
        );
    } else {
        println!(
            "The ledger and that configuration live in a temp folder removed at exit (--db PATH keeps the ledger)."
        );
    }
    println!("Press ctrl-c to stop.");
}
