//! Opening the ledger the configuration names: SQLite (the default) or PostgreSQL.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use super::sqlite::{SqliteStore, Synchronous};
use super::Store;
use crate::config::Config;

/// Opens the SQLite ledger the configuration names (`storage.url = "sqlite://PATH"`).
pub fn open_sqlite(config: &Config) -> anyhow::Result<Arc<SqliteStore>> {
    let path = config.sqlite_path().context("storage.url must be sqlite://PATH")?;
    let sync = if config.storage.sqlite_synchronous == "normal" { Synchronous::Normal } else { Synchronous::Full };
    let store =
        SqliteStore::open(Path::new(path), sync).with_context(|| format!("cannot open the ledger at {path}"))?;
    Ok(Arc::new(store))
}

/// Opens the ledger the configuration names, SQLite or PostgreSQL, migrated to this version.
/// A missing SQLite file is created: for `serve`, `import`, `migrate` and `demo`.
pub async fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if config.is_postgres() {
        let store = super::postgres::PgStore::connect(&config.storage.url)
            .await
            .with_context(|| format!("cannot open the ledger at {}", config.storage.redacted_url()))?;
        Ok(Arc::new(store))
    } else {
        Ok(open_sqlite(config)?)
    }
}

/// As [`open`], for commands that only read or act on an existing ledger (`events`, `dlq`,
/// `prune`, `reconcile`): a SQLite file that does not exist is an error naming the file looked
/// for, never a new empty ledger that would answer "nothing found".
pub async fn open_existing(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(path) = config.sqlite_path().filter(|_| !config.is_postgres()) {
        let path = Path::new(path);
        if !path.exists() {
            let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            anyhow::bail!(
                "no ledger at {} (storage.url = \"{}\"; a relative path is from the working folder). \
                 Point --config (or SURETY_CONFIG, or SURETY_STORAGE__URL) at the configuration the service \
                 runs with; `surety serve`, `surety import` and `surety migrate` create a ledger",
                shown.display(),
                config.storage.url
            );
        }
    }
    open(config).await
}
