//! GA4's side of `surety destinations test` and of `mode = "validate"`: both go to the validation
//! server, `/debug/mp/collect`, whose events "do not show up in reports" — and which, by Google's
//! own warning, does not check the `api_secret` (nor that the measurement id is one's own
//! stream): the check says so rather than claim it (docs/platforms.md §GA4, "Checking without
//! sending").

use chrono::Utc;
use serde_json::json;

use super::{read_validation, Ga4};
use crate::core::{Claimed, Outcome};
use crate::delivery::http::{self, StatusClass};
use crate::delivery::{Check, DeliveryOutcome, SendReport};

/// What the debug endpoint cannot tell, said on every check.
pub const UNCHECKED: &str = "not verified: GA4's validation server does not check the api_secret, nor that the \
                             measurement id is a stream you own; compare both with Admin > Data streams > \
                             Measurement Protocol API secrets";

impl Ga4 {
    /// A synthetic event (never a conversion: it only goes to the validation server).
    pub(super) async fn do_check(&self) -> Vec<Check> {
        let micros = Utc::now().timestamp_micros();
        let body = json!({
            "client_id": "1000000000.1000000000",
            "timestamp_micros": micros,
            "events": [{"name": "surety_destination_test", "params": {"engagement_time_msec": 1}}],
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let exchange = http::post_json(&self.client, "debug", &self.debug_url, body).await;
        let reached = match exchange.status_class() {
            StatusClass::Success => {
                let verdict = read_validation(&exchange, 1).into_iter().next().flatten();
                match verdict {
                    None => Check::new(
                        "validation server",
                        true,
                        "/debug/mp/collect took a synthetic event without a validation message",
                    ),
                    Some(Outcome::Rejected { messages, .. }) => {
                        Check::new("validation server", false, format!("validation messages: {}", messages.join("; ")))
                    }
                    Some(other) => Check::new("validation server", false, describe(&other)),
                }
            }
            other => Check::new("validation server", false, describe(&super::failure(&other, &exchange))),
        };
        vec![reached, Check::new("api_secret and measurement_id", true, UNCHECKED)]
    }

    /// Validate mode: every batch to the validation server; a delivery it has no message about
    /// is valid.
    pub(super) async fn do_validate_only(&self, batch: &[Claimed]) -> SendReport {
        let mut report = self.debug_check(batch).await;
        let detail = format!("/debug/mp/collect gave no validation message; {UNCHECKED}");
        for id in std::mem::take(&mut report.validated) {
            report.outcomes.push(DeliveryOutcome {
                delivery_id: id,
                outcome: Outcome::Delivered { accepted: true, detail: Some(detail.clone()) },
                payload_sha256: None,
                request: None,
            });
        }
        report
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Rejected { messages, .. } => messages.join("; "),
        Outcome::Retry { reason, .. } => format!("no usable answer: {reason}"),
        Outcome::Halt { reason } => reason.clone(),
        Outcome::Delivered { detail, .. } => detail.clone().unwrap_or_default(),
        Outcome::Skipped { detail, .. } => detail.clone(),
    }
}
