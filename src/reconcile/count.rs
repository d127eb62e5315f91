//! What coverage, late arrivals and their day rollups share: why a count failed, and the plain
//! read of a window's events.

use chrono::{DateTime, Utc};

use crate::store::{LedgerEntry, Store, StoreError, WindowPage};

/// Ledger events per page.
const PAGE: usize = 5000;

/// Why a count over the ledger could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// More events than a `u64` holds, or sums beyond an `i128` (cannot happen on a real ledger).
    #[error("a count overflowed")]
    Overflow,
}

/// Hands every event that occurred in `[since, until)`, with its deliveries, to `each`, reading
/// the ledger a page at a time (`Store::window_page`).
pub(super) async fn each_in_window(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    mut each: impl FnMut(&LedgerEntry) -> Result<(), CountError>,
) -> Result<(), CountError> {
    let mut page = WindowPage { since, until, after_seq: 0, limit: PAGE };
    loop {
        let entries = store.window_page(page).await?;
        if let Some(last) = entries.last() {
            page.after_seq = last.seq;
        }
        for e in &entries {
            each(e)?;
        }
        if entries.len() < PAGE {
            return Ok(());
        }
    }
}
