//! `surety rollups refresh`: what `serve` does every minute, once, now: recompute the stale
//! cached day rollups that coverage and late arrivals read (ADR 0008). For a ledger no `serve`
//! keeps (a copy, a benchmark) or to warm the cache after a bulk import.

use std::process::ExitCode;

use super::{load, runtime, ConfigArg};

pub fn refresh(config: &ConfigArg) -> anyhow::Result<ExitCode> {
    let config = load(config)?;
    let days = runtime()?.block_on(async {
        let store = crate::store::open_existing(&config).await?;
        anyhow::Ok(crate::reconcile::rollup::refresh(store.as_ref(), chrono::Utc::now()).await?)
    })?;
    println!(
        "recomputed {days} day rollups (of the last {} closed days; the others were unchanged)",
        crate::reconcile::rollup::HORIZON_DAYS
    );
    Ok(ExitCode::SUCCESS)
}
