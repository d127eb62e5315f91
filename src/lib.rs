//! Surety: a server-side conversion relay.
//!
//! Business events come in (`ingest`, `api`), are committed to the ledger (`store`) with a stable
//! id, joined to captured identity and planned per destination (`core::plan`), then delivered by
//! workers (`worker`) through one adapter per platform (`platforms`). ARCHITECTURE.md has the map.
//!
//! The entry point is [`run`]: it takes a configuration, a bound listener and a shutdown future,
//! so tests bind port 0 and stop the service cleanly.

#![forbid(unsafe_code)]

pub mod alerts;
pub mod api;
pub mod bench;
pub mod cli;
pub mod config;
pub mod core;
pub mod delivery;
pub mod demo;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod ingest;
pub mod platforms;
pub mod reconcile;
pub mod serve;
pub mod sim;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod worker;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::api::auth::Auth;
use crate::api::App;
use crate::config::Config;
use crate::core::plan::Planner;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Runs API and workers (as configured) until `shutdown` resolves, then stops claiming, lets
/// in-flight sends finish and be recorded, and returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // One serving process per SQLite ledger (a file lock); PostgreSQL ledgers are shared by design.
    let (store, _lock): (Arc<dyn Store>, _) = if config.is_postgres() {
        (store::open(&config).await?, None)
    } else {
        let sqlite = store::open_sqlite(&config)?;
        let lock = lock_ledger(sqlite.path())?;
        (sqlite, Some(lock))
    };
    let destinations = platforms::build(&config.destinations)?;
    for d in &destinations {
        d.attach_ledger(store.clone());
    }
    let planner = Arc::new(delivery::planner(&config, &destinations));
    let auth = Auth::from_config(&config.auth)?;
    if auth.is_open() {
        tracing::warn!("NO AUTH TOKENS CONFIGURED: the API is open to anyone who can reach {}", config.server.listen);
    }
    if config.server.workers {
        // Alone on a SQLite ledger, every lease left is an earlier process's; on PostgreSQL other
        // live processes hold leases, so only expired ones are taken back (here and periodically).
        let all = !config.is_postgres();
        let recovered = store.recover(planner.clone(), all, chrono::Utc::now()).await?;
        if recovered != Default::default() {
            tracing::warn!(?recovered, "recovered deliveries left in flight by an earlier process");
        }
    }
    let wake: Vec<Arc<Notify>> = destinations.iter().map(|_| Arc::new(Notify::new())).collect();
    let metrics = Arc::new(Metrics::new());
    if config.server.workers {
        // Their follow-up counters at 0 from the first scrape (the workers ask, in this process).
        for d in destinations.iter().filter(|d| d.follow_up_after().is_some()) {
            metrics.follows_up(d.name());
        }
    }
    let alerts = Arc::new(alerts::AlertBook::from_config(&config));
    let app = Arc::new(App {
        config: config.clone(),
        store: store.clone(),
        planner: planner.clone(),
        metrics: metrics.clone(),
        auth,
        capture_limit: api::capture::CaptureLimiter::per_minute(config.auth.capture_per_minute),
        sources: sources::SourceSecrets::resolve(&config.sources)?,
        wake: wake.clone(),
        alerts: alerts.clone(),
    });

    let cancel = CancellationToken::new();
    let mut workers = tokio::task::JoinSet::new();
    if config.server.workers {
        let ctx = worker::WorkerContext {
            store: store.clone(),
            planner: planner.clone(),
            metrics: metrics.clone(),
            retry: config.retry.clone(),
            config: config.worker.clone(),
            owner: format!("surety-{}-{:08x}", std::process::id(), rand::random::<u32>()),
            breaker: config.worker.breaker(),
            keep_request_bodies: config.ledger.keep_request_bodies_days > 0,
        };
        for ((dest, wake), dc) in destinations.into_iter().zip(wake).zip(&config.destinations) {
            let pace =
                dc.common().requests_per_minute.filter(|&n| n > 0).map(|n| std::time::Duration::from_secs(60) / n);
            let lane = worker::Lane { destination: dest, pace };
            workers.spawn(worker::run(ctx.clone(), lane, wake, cancel.clone()));
        }
    }
    if config.server.workers {
        let lease = std::time::Duration::from_secs(config.worker.lease_secs.max(1));
        workers.spawn(lease_recovery(store.clone(), planner.clone(), lease, cancel.clone()));
    }
    if alerts.is_evaluating() {
        let names = config.destinations.iter().map(|d| d.name().to_owned()).collect();
        workers.spawn(alerts::run(
            config.alerting.clone(),
            config.alerts.clone(),
            names,
            alerts,
            alerts::Watched { store: store.clone(), metrics },
            cancel.clone(),
        ));
    }
    // The day rollups that coverage and late arrivals read (ADR 0008); the leader keeps them.
    workers.spawn(reconcile::rollup::run(store.clone(), cancel.clone()));
    if config.server.workers {
        workers.spawn(prune_loop(store.clone(), config.retention.clone(), config.ledger.clone(), cancel.clone()));
    }
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: no new claims; finishing in-flight sends");
            cancel.cancel();
        });
    }
    tracing::info!(addr = %listener.local_addr()?, api = config.server.api, workers = config.server.workers, "surety is up");
    if config.server.api {
        let limits = serve::Limits::from_config(&config.server);
        serve::serve(listener, api::router(app), limits, cancel.clone()).await?;
    } else {
        drop(listener);
        cancel.cancelled().await;
    }
    while workers.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

/// Takes an exclusive lock beside the database file for the life of the process.
/// Takes back leases that ran out while this process runs: a worker (here or in another
/// process sharing the ledger) that died or hung mid-batch loses its claims after `lease`.
async fn lease_recovery(
    store: Arc<dyn Store>,
    planner: Arc<Planner>,
    lease: std::time::Duration,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(lease) => {}
            _ = cancel.cancelled() => return,
        }
        match store.recover(planner.clone(), false, chrono::Utc::now()).await {
            Ok(r) if r != Default::default() => {
                tracing::warn!(recovered = ?r, "took back deliveries whose lease ran out")
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "taking back expired leases failed"),
        }
    }
}

/// Deletes what retention no longer keeps, every `interval_secs`, a batch per transaction, and
/// drops request bodies older than `[ledger] keep_request_bodies_days` (also when retention is off).
async fn prune_loop(
    store: Arc<dyn Store>,
    retention: config::RetentionConfig,
    ledger: config::LedgerConfig,
    cancel: CancellationToken,
) {
    let interval = std::time::Duration::from_secs(retention.interval_secs.max(1));
    loop {
        let now = chrono::Utc::now();
        let bodies_before = ledger.bodies_cutoff(now);
        match prune_request_bodies_all(store.as_ref(), bodies_before, retention.batch, &cancel).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(request_bodies = n, before = %bodies_before, "dropped request bodies, kept their hashes")
            }
            Err(e) => tracing::error!(error = %e, "dropping old request bodies failed; trying again next interval"),
        }
        if let Some(before) = retention.cutoff(now) {
            match prune_all(store.as_ref(), before, retention.batch, &cancel).await {
                Ok(total) if !total.is_empty() => tracing::info!(?total, %before, "pruned the ledger"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "pruning the ledger failed; trying again next interval"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// Prunes batch after batch until nothing older than `before` is left (or `cancel`).
pub async fn prune_all(
    store: &dyn Store,
    before: chrono::DateTime<chrono::Utc>,
    batch: usize,
    cancel: &CancellationToken,
) -> Result<store::Pruned, store::StoreError> {
    let mut total = store::Pruned::default();
    while !cancel.is_cancelled() {
        let round = store.prune(before, batch).await?;
        if round.is_empty() {
            break;
        }
        total.add(&round);
        // Let ingest and the workers have the writer between batches.
        tokio::task::yield_now().await;
    }
    Ok(total)
}

/// Drops request bodies sent before `before`, batch after batch (or until `cancel`); their
/// hashes stay. Returns how many.
pub async fn prune_request_bodies_all(
    store: &dyn Store,
    before: chrono::DateTime<chrono::Utc>,
    batch: usize,
    cancel: &CancellationToken,
) -> Result<u64, store::StoreError> {
    let mut total = 0u64;
    while !cancel.is_cancelled() {
        let round = store.prune_request_bodies(before, batch.max(1)).await?;
        if round == 0 {
            break;
        }
        total = total.saturating_add(round);
        tokio::task::yield_now().await;
    }
    Ok(total)
}

fn lock_ledger(db: &Path) -> anyhow::Result<std::fs::File> {
    let path = db.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!("another surety process is serving {} (lock {} is held)", db.display(), path.display())
    })?;
    Ok(file)
}
