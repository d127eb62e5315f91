//! Meta's side of `surety destinations test` and of `mode = "validate"`. Meta has no dry-run
//! route: the closest documented one is a request carrying `test_event_code`, whose events go to
//! Events Manager's Test Events tool (docs/platforms.md §Meta, "Checking without sending"). The
//! code is the destination's `test_event_code` (Events Manager > Test Events); without one, a
//! code is made up, and the output says so.

use chrono::Utc;
use serde_json::json;

use super::answer::{self, RequestVerdict};
use super::Meta;
use crate::core::pii::sha256_hex;
use crate::core::Claimed;
use crate::delivery::http;
use crate::delivery::{Check, SendReport};

impl Meta {
    /// The code test events are sent with, and whether it was made up for want of one.
    pub(super) fn test_code(&self) -> (String, bool) {
        match &self.test_event_code {
            Some(code) => (code.clone(), false),
            None => {
                let digits: String = sha256_hex(self.name.as_bytes()).chars().filter(char::is_ascii_digit).collect();
                (format!("SURETY{}", &digits[..digits.len().min(6)]), true)
            }
        }
    }

    fn code_note(&self) -> String {
        match self.test_code() {
            (code, false) => format!("with test_event_code {code} (Events Manager > Test Events)"),
            (code, true) => format!(
                "with the made-up test_event_code {code}: set test_event_code to the code Events Manager > Test \
                 Events shows to see the events there"
            ),
        }
    }

    /// One synthetic test event (a custom event, never a standard conversion).
    pub(super) async fn do_check(&self) -> Vec<Check> {
        let (code, _) = self.test_code();
        let body = json!({
            "data": [{
                "event_name": "SuretyDestinationTest",
                "event_time": Utc::now().timestamp(),
                "event_id": format!("surety-destination-test-{}", Utc::now().timestamp()),
                "action_source": "system_generated",
                "user_data": {"external_id": [sha256_hex(b"surety-destination-test")]},
            }],
            "test_event_code": code,
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut exchange = http::post_json(&self.client, "events", &self.events_url, body).await;
        exchange.body = self.token.redact(&exchange.body);
        let note = self.code_note();
        let (token, pixel) = match answer::read(&exchange) {
            RequestVerdict::Received { detail, .. } => (
                Check::new("access token", true, "Meta accepted the token"),
                Check::new("pixel", true, format!("the pixel took a test event {note}: {detail}")),
            ),
            RequestVerdict::Halt { reason } => (
                Check::new("access token", false, format!("refused: {reason}")),
                Check::new("pixel", false, "not checked: the token was refused"),
            ),
            RequestVerdict::Rejected { message, .. } => (
                Check::new("access token", true, "Meta read the request (the token was not refused)"),
                Check::new("pixel", false, format!("refused the test event: {message}")),
            ),
            RequestVerdict::Retry { reason, .. } => (
                Check::new("access token", false, format!("no usable answer: {reason}")),
                Check::new("pixel", false, "not checked: no usable answer"),
            ),
        };
        vec![token, pixel]
    }

    /// Validate mode: the batch sent as test events, split and resent as a send would be.
    pub(super) async fn do_validate_only(&self, batch: &[Claimed]) -> SendReport {
        let (code, _) = self.test_code();
        let mut report = self.send_with(batch, Some(&code)).await;
        let note = self.code_note();
        for o in &mut report.outcomes {
            if let crate::core::Outcome::Delivered { detail, .. } = &mut o.outcome {
                *detail = Some(format!("test event {note}; {}", detail.take().unwrap_or_default()));
            }
        }
        report
    }
}
