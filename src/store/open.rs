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
