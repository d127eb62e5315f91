//! A platform read back from the ledger's follow-up results (`--platform DEST=api` for Google
//! Ads): what `requestStatus:retrieve` said of the request that carried each conversion stands
//! for the platform's report. Google says per request, not per conversion, what it kept.

use super::{Matcher, Side};
use crate::core::delivery::reason;
use crate::core::DeliveryState;
use crate::store::LedgerDelivery;

impl Matcher {
    /// The destination's side is its follow-ups (no report is read).
    pub fn add_follow_ups(&mut self, dest: &str) {
        if let Some(d) = self.report.destinations.get_mut(dest) {
            d.platform_reported = Some(0);
        }
        self.sides.insert(dest.to_owned(), Side::FollowUps);
    }

    /// For a destination read back from follow-ups: what the platform said became of a
    /// delivered (or processing-failed) conversion. `None`: not such a destination, or a
    /// delivery the platform never took (classed by [`Matcher::delivery_class`]).
    pub(super) fn follow_up_class(
        &mut self,
        i: usize,
        delivery: Option<&LedgerDelivery>,
    ) -> Option<(String, String, bool)> {
        let name = &self.scopes[i].name;
        if !matches!(self.sides.get(name), Some(Side::FollowUps)) {
            return None;
        }
        let d = delivery?;
        let why = d.reason.as_deref().unwrap_or_default();
        let class = |c: &str, detail: String, explained: bool| Some((c.to_owned(), detail, explained));
        match (d.state, why) {
            (DeliveryState::Delivered, "accepted") => {
                if let Some(r) = self.report.destinations.get_mut(name).and_then(|r| r.platform_reported.as_mut()) {
                    *r += 1;
                }
                class("matched", String::new(), true)
            }
            (DeliveryState::Delivered, "partially_accepted") => class(
                "partially_accepted_at_platform",
                "Google kept part of the request that carried it and does not say which conversions: see the \
                 delivery's messages"
                    .into(),
                false,
            ),
            (DeliveryState::Delivered, r) if r == reason::PROCESSING_UNKNOWN => class(
                "unconfirmed_at_platform",
                "Google took the request but never said what it kept (the follow-up gave up)".into(),
                true,
            ),
            (DeliveryState::Delivered, _) => {
                let hours = (self.settings.now - d.created_at).num_hours();
                class(
                    "awaiting_confirmation",
                    format!("sent, planned {hours}h ago; Google has not yet said whether it kept it"),
                    true,
                )
            }
            (DeliveryState::Rejected, "processing_failed") => class(
                "missing_at_platform",
                "Google's processing status says the request that carried it failed: it was not counted".into(),
                false,
            ),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
