//! Identity that arrives after the event (both stores): a capture re-plans the subject's
//! deliveries `awaiting_identity` with the identity joined onto their events. Pure: the stores
//! load the waiting deliveries and write back what this decides.

use chrono::{DateTime, Utc};

use crate::core::delivery::reason;
use crate::core::plan::{Planned, Planner};
use crate::core::{DeliveryState, Event, Route};
use crate::store::PlannedDelivery;

/// The attempt-log outcome that shows a re-plan on the event's timeline.
pub(crate) const REPLANNED: &str = "identity_joined";

/// A delivery waiting for its subject's identity, as stored.
pub(crate) struct Waiting {
    pub(crate) delivery_id: i64,
    pub(crate) destination: String,
    pub(crate) route: Route,
}

/// What a waiting delivery becomes after the capture.
pub(crate) struct Replanned {
    pub(crate) delivery_id: i64,
    pub(crate) planned: Planned,
    /// When it is due: now if pending, at the end of its wait if still awaiting, none if ended.
    pub(crate) due: Option<DateTime<Utc>>,
    /// The timeline's note of it.
    pub(crate) detail: String,
}

impl Replanned {
    pub(crate) fn view(&self) -> PlannedDelivery {
        PlannedDelivery {
            destination: self.planned.destination.clone(),
            state: self.planned.state,
            reason: self.planned.reason,
        }
    }
}

/// Plans each waiting delivery of `event` again (the event already joined with the bridge), with
/// every rule applying as at ingest: consent, the window, the platform's rules. A destination no
/// longer configured is left waiting (nothing could send it anyway).
pub(crate) fn replan(event: &Event, waiting: Vec<Waiting>, planner: &Planner, now: DateTime<Utc>) -> Vec<Replanned> {
    waiting
        .into_iter()
        .filter_map(|w| {
            let planned = planner.replan(event, &w.destination, &w.route, now)?;
            let (due, detail) = match (planned.state, planned.reason) {
                (DeliveryState::Pending, Some(reason::AWAITING_IDENTITY)) => (
                    planned.wait_until,
                    format!(
                        "identity captured, but not what {} needs: still waiting until {}",
                        w.destination,
                        planned.wait_until.map_or_else(String::new, |t| t.to_rfc3339())
                    ),
                ),
                (DeliveryState::Pending, _) => {
                    (Some(now), "identity captured and joined: re-planned, due now".to_owned())
                }
                (state, why) => {
                    (None, format!("identity captured and joined: re-planned as {state}:{}", why.unwrap_or_default()))
                }
            };
            Some(Replanned { delivery_id: w.delivery_id, planned, due, detail })
        })
        .collect()
}

#[cfg(test)]
mod tests;
