//! `surety prune`: what the retention policy no longer keeps, deleted now (serve does it every
//! interval), and request bodies past `ledger.keep_request_bodies_days`.

use std::process::ExitCode;

use super::{load, runtime, ConfigArg};

pub fn run(config: &ConfigArg, older_than_days: Option<u32>, json: bool) -> anyhow::Result<ExitCode> {
    let mut config = load(config)?;
    if let Some(days) = older_than_days {
        config.retention.keep_days = days;
        let problems: Vec<String> = config.problems().into_iter().filter(|p| p.starts_with("retention.")).collect();
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
