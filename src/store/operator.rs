//! What a person asks of the ledger: replays (`Store::replay`) and settlements (`Store::settle`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::core::DeliveryState;

/// Which deliveries a replay targets.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySelector {
    #[serde(default)]
    pub delivery_ids: Vec<i64>,
    pub event_id: Option<String>,
    pub destination: Option<String>,
    /// Only deliveries in this state (e.g. `dead`).
    pub state: Option<DeliveryState>,
    /// Only deliveries that ended with this reason (e.g. `validate_only`, `not_sampled`).
    pub reason: Option<String>,
    /// Say what would be replayed and refused, and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Who replays, for the record (`replays.replayed_by`): set by the caller from the
    /// credential (`admin token #k`, `console:<user>`, `cli`), never read from a request body.
    #[serde(skip)]
    pub by: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayReport {
    /// Nothing was changed: `replayed` lists what would have been.
    pub dry_run: bool,
    pub replayed: Vec<i64>,
    pub refused: Vec<ReplayRefusal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReplayRefusal {
    pub delivery_id: i64,
    pub state: DeliveryState,
    pub reason: String,
}

/// What a person found on the platform when settling a delivery (`surety dlq settle --as`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettledAs {
    /// It arrived: the delivery ends `delivered:settled_by_person`.
    Delivered,
    /// It did not, and is left so: `skipped:settled_by_person`.
    NotDelivered,
}

impl SettledAs {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::NotDelivered => "not_delivered",
        }
    }
}

impl std::fmt::Display for SettledAs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SettledAs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "delivered" => Ok(Self::Delivered),
            "not_delivered" => Ok(Self::NotDelivered),
            _ => Err(format!("'{s}' is neither delivered nor not_delivered")),
        }
    }
}

/// The longest note a settlement keeps, in characters (longer ones are refused at the edge).
pub const MAX_SETTLEMENT_NOTE: usize = 2000;

/// A person's verdict on one delivery that needed one (`Store::settle`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settlement {
    pub delivery_id: i64,
    pub settled_as: SettledAs,
    /// Who: an admin token's label (`admin token #1`) or `cli:<OS user>`. Never a secret.
    pub by: String,
    pub note: Option<String>,
}

/// One settlement as recorded, on the event's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SettlementView {
    pub delivery_id: i64,
    pub at: DateTime<Utc>,
    pub settled_as: SettledAs,
    pub by: String,
    pub note: Option<String>,
    pub previous_state: String,
    pub previous_reason: Option<String>,
}

/// What `Store::settle` made of a settlement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SettleOutcome {
    /// Ended now in `state` with reason `settled_by_person`, and recorded.
    Settled {
        destination: String,
        state: DeliveryState,
        settlement: SettlementView,
    },
    NotFound,
    /// Not a delivery a person settles (only dead, rejected and in_doubt ones are): unchanged.
    Refused {
        state: DeliveryState,
        reason: Option<String>,
        why: &'static str,
    },
}
