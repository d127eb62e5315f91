//! Day rollups equal a scan of the ledger, and a refresh recomputes only what changed.
