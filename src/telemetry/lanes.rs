//! What each destination's worker in this process last learnt about its platform: whether its
//! circuit is closed, open or halted (credentials refused) and until when, the last error the
//! platform gave and when, and the last time it took something. The workers write it as they
//! tell their breaker; the console's health lines read it (with the ledger's queue and counts).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A destination's circuit as its worker sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    #[default]
    Closed,
    /// Paused after sustained failure; one delivery probes the platform when it ends.
    Open,
    /// Paused because the platform refused the credentials (a person must act).
    Halted,
}

/// One answer of the platform that was not a success, as the worker read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlatformError {
    pub at: DateTime<Utc>,
    /// `retry`, `halt` or `rejected`.
    pub outcome: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LaneState {
    pub circuit: Circuit,
    /// Until when an open or halted circuit claims nothing (then one delivery probes).
    pub open_until: Option<DateTime<Utc>>,
    pub last_error: Option<PlatformError>,
    pub last_success: Option<DateTime<Utc>>,
}

/// Every destination's [`LaneState`] in this process (none: no worker runs it here).
#[derive(Debug, Default)]
pub struct Lanes(Mutex<BTreeMap<String, LaneState>>);

impl Lanes {
    pub fn get(&self, destination: &str) -> Option<LaneState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(destination).cloned()
    }

    /// Changes one destination's state (created closed on first use).
    pub fn update(&self, destination: &str, f: impl FnOnce(&mut LaneState)) {
        let mut lanes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(lanes.entry(destination.to_owned()).or_default());
    }
}
