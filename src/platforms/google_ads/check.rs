//! Google Ads' side of `surety destinations test` and of `mode = "validate"`: the Data Manager
//! API's `validateOnly` request field — Google checks the request as it would ingest it, fast-fail
//! errors included, and ingests nothing (docs/platforms.md §Google Ads, "Checking without
//! sending"). The access token is fetched as for a send: a refused grant shows here first.

use std::collections::BTreeSet;

use super::GoogleAds;
use crate::core::{Claimed, Outcome, Route};
use crate::delivery::validate_mode::test_event;
use crate::delivery::{Check, SendReport};

impl GoogleAds {
    pub(super) async fn do_check(&self, routes: &[Route]) -> Vec<Check> {
        let mut requests = Vec::new();
        let token = match self.tokens.bearer((self.clock)(), &mut requests).await {
            Ok(_) => Check::new("service account", true, "the token endpoint issued an access token"),
            Err(e) => return vec![Check::new("service account", false, format!("no access token: {}", e.reason()))],
        };
        let mut checks = vec![token];
        let actions: BTreeSet<&str> = routes.iter().map(|r| r.event.as_str()).collect();
        if actions.is_empty() {
            checks.push(Check::new(
                "conversion actions",
                true,
                "not checked: no catalog route names a conversion action of this destination",
            ));
        }
        for action in actions {
            let claimed = test_event(&Route { event: action.to_owned(), ..Route::default() }, (self.clock)());
            let report = self.send_mode(std::slice::from_ref(&claimed), true).await;
            let what = format!("account {} and conversion action {action}", self.accounts.customer_id);
            let check = match report.outcomes.into_iter().next().map(|o| o.outcome) {
                Some(Outcome::Delivered { detail, .. }) => {
                    Check::new(what, true, detail.unwrap_or_else(|| "validateOnly: no error".into()))
                }
                Some(Outcome::Halt { reason }) => Check::new(what, false, format!("refused: {reason}")),
                Some(Outcome::Rejected { messages, .. }) => {
                    Check::new(what, false, format!("refused the test request: {}", messages.join("; ")))
                }
                Some(Outcome::Retry { reason, .. }) => Check::new(what, false, format!("no usable answer: {reason}")),
                Some(Outcome::Skipped { detail, .. }) => Check::new(what, false, detail),
                None => Check::new(what, false, "no answer"),
            };
            checks.push(check);
        }
        checks
    }

    /// Validate mode: each batch sent with `validateOnly: true`.
    pub(super) async fn do_validate_only(&self, batch: &[Claimed]) -> SendReport {
        self.send_mode(batch, true).await
    }
}
