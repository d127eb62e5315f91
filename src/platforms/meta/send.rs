//! One send: the batch's live events in requests of at most `batch_size`, and, when Meta
//! rejects a request for its payload, the split-and-resend that isolates the events it refuses
//! (docs/platforms.md §Meta: "on a whole-request rejection split and find the culprit rather than
//! dead-letter the innocent").

use std::ops::Range;

use super::answer::{self, RequestVerdict};
use super::payload::{self, ServerEvent};
use super::Meta;
use crate::core::delivery::reason;
use crate::core::{Claimed, Outcome};
use crate::delivery::http::{self, Exchange};
use crate::delivery::{DeliveryOutcome, SendReport};

/// Most requests one send may add to isolate refused events. Each split costs two requests and
/// one culprit among n events costs about 2·log2(n) (20 for 1,000), so this finds a few culprits
/// per send while bounding how long a send holds its lease. Events still undecided when it runs
/// out are retried (in a later, differently composed batch), never rejected with the others.
pub const MAX_ISOLATION_REQUESTS: usize = 64;

impl Meta {
    async fn post(&self, body: Vec<u8>) -> Exchange {
        let mut exchange = http::post_json(&self.client, "events", &self.events_url, body).await;
        // Meta does not echo tokens as far as documented; scrub anyway, before anything is kept.
        exchange.body = self.token.redact(&exchange.body);
        exchange.record.response_excerpt = http::excerpt(&exchange.body);
        if let Some(error) = &exchange.record.error {
            exchange.record.error = Some(String::from_utf8_lossy(&self.token.redact(error.as_bytes())).into_owned());
        }
        exchange
    }

    pub(super) async fn do_send(&self, batch: &[Claimed]) -> SendReport {
        self.send_with(batch, self.test_event_code.as_deref()).await
    }

    /// Sends with this `test_event_code` (validate mode: always one).
    pub(super) async fn send_with(&self, batch: &[Claimed], test_event_code: Option<&str>) -> SendReport {
        let mut report = SendReport::default();
        let live: Vec<(&Claimed, ServerEvent)> = batch
            .iter()
            .map(|c| (c, ServerEvent::new(&c.event, &c.route, c.strip_personal, &self.rules.settings)))
            .collect();

        // Depth first, in order: a stack whose top is the next range to send.
        let starts = (0..live.len()).step_by(self.batch_size);
        let mut todo: Vec<Range<usize>> = starts.map(|s| s..(s + self.batch_size).min(live.len())).rev().collect();
        let mut budget = MAX_ISOLATION_REQUESTS;
        let mut stopped: Option<Outcome> = None;
        while let Some(range) = todo.pop() {
            if let Some(outcome) = &stopped {
                for (c, p) in &live[range] {
                    report.outcomes.push(result(c, p, outcome.clone(), None));
                }
                continue;
            }
            let members: Vec<&ServerEvent> = live[range.clone()].iter().map(|(_, p)| p).collect();
            let body = payload::request_body(&members, test_event_code);
            let exchange = self.post(body).await;
            tracing::debug!(destination = %self.name, events = range.len(), status = ?exchange.status(),
                duration_ms = exchange.record.duration.as_millis() as u64, "Meta events");
            let request = Some(report.requests.len());
            let verdict = answer::read(&exchange);
            report.requests.push(exchange.record);
            let count = range.len();
            let outcome = match verdict {
                RequestVerdict::Received { received, detail } => {
                    let accepted = received == Some(count as u64);
                    let detail = if accepted { detail } else { format!("{detail} (of {count} sent)") };
                    Outcome::Delivered { accepted, detail: Some(detail) }
                }
                RequestVerdict::Retry { reason, after } => {
                    let outcome = Outcome::Retry { reason, after };
                    stopped = Some(outcome.clone());
                    outcome
                }
                RequestVerdict::Halt { reason } => {
                    let outcome = Outcome::Halt { reason };
                    stopped = Some(outcome.clone());
                    outcome
                }
                RequestVerdict::Rejected { message, splittable: true } if count > 1 => {
                    if budget >= 2 {
                        budget -= 2;
                        let mid = range.start + count / 2;
                        todo.push(mid..range.end);
                        todo.push(range.start..mid);
                        continue;
                    }
                    Outcome::retry(
                        format!(
                            "rejected with its batch while isolating the events Meta refuses; sent again later: \
                             {message}"
                        ),
                        None,
                    )
                }
                RequestVerdict::Rejected { message, .. } => {
                    Outcome::Rejected { reason: reason::PLATFORM_REJECTED.to_owned(), messages: vec![message] }
                }
            };
            for (c, p) in &live[range] {
                report.outcomes.push(result(c, p, outcome.clone(), request));
            }
        }
        report
    }
}

fn result(c: &Claimed, p: &ServerEvent, outcome: Outcome, request: Option<usize>) -> DeliveryOutcome {
    DeliveryOutcome { delivery_id: c.delivery_id, outcome, payload_sha256: Some(p.event_sha256.clone()), request }
}
