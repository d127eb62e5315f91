//! Sending a batch: one request per group of events (`batch::split`), resent without the
//! events a fast-fail names and once with a new token after a 401, and every answer read into
//! an outcome per delivery (see the module map in `mod.rs`).

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::answer::{self, RequestVerdict};
use super::payload::{self, IngestEvent, Restatement};
use super::restate::restate;
use super::{batch, GoogleAds};
use crate::core::delivery::reason;
use crate::core::pii::sha256_hex;
use crate::core::{Claimed, Outcome, RetryAfter};
use crate::delivery::http as exchange;
use crate::delivery::http::excerpt;
use crate::delivery::{DeliveryOutcome, SendReport};
use crate::platforms::google_ads::config::Retraction;
use crate::platforms::google_auth::Bearer;

impl GoogleAds {
    pub(super) async fn do_send(&self, batch: &[Claimed]) -> SendReport {
        self.send_mode(batch, false).await
    }

    /// Sends, or with `validate_only` asks Google to check the requests and ingest nothing.
    pub(super) async fn send_mode(&self, batch: &[Claimed], validate_only: bool) -> SendReport {
        let mut report = SendReport::default();
        let mut live = Vec::with_capacity(batch.len());
        let mut parts = Vec::with_capacity(batch.len());
        for c in batch {
            match self.restated(c).await {
                Ok(prepared) => {
                    live.push(c);
                    parts.push(prepared);
                }
                Err((prepared, outcome)) => report.outcomes.push(result(c, &prepared, outcome, None)),
            }
        }
        let mut refreshed = false;
        // Once access is refused, the other groups of the batch are not tried: same answer.
        let mut halted: Option<Outcome> = None;
        for group in batch::split(&parts, self.batch_size) {
            match &halted {
                Some(outcome) => {
                    for i in group {
                        report.outcomes.push(result(live[i], &parts[i], outcome.clone(), None));
                    }
                }
                None => {
                    let group = Group { members: group, validate_only };
                    halted = self.send_group(&live, &parts, group, &mut refreshed, &mut report).await;
                }
            }
        }
        report
    }

    /// The event's part of the request; an adjustment that states no `restated_value` carries the
    /// value computed from the ledger (`restate`). `Err` when it must not be sent: an adjustment
    /// restating the value the conversion already has (Google would refuse the repeat as
    /// `DUPLICATE_TRANSACTION_ID`), a full retraction under `retraction = "skip"`, or a ledger
    /// that could not be read (retried).
    async fn restated(&self, c: &Claimed) -> Result<IngestEvent, (IngestEvent, Outcome)> {
        let shape = self.rules.shape();
        let event = &c.event;
        if !shape.is_adjustment(event) || payload::restated_value(event).is_some() {
            return Ok(self.prepare(c));
        }
        let restatement = match self.ledger.get() {
            None => None,
            Some(ledger) => match ledger.subject_history(&event.subject, &self.name).await {
                Ok(history) => restate(event, &c.route.event, &history, shape),
                Err(e) => {
                    let reason = format!("the ledger could not be read to restate the conversion: {e}");
                    return Err((self.prepare(c), Outcome::retry(reason, None)));
                }
            },
        };
        let prepared = IngestEvent::restated(event, &c.route, c.strip_personal, shape, restatement.as_ref());
        let retracts = restatement.as_ref().is_none_or(Restatement::is_retraction);
        if let Some(r) = &restatement {
            if r.value == r.previous {
                let detail = format!(
                    "the conversion already has the value {} ({}): {}",
                    r.value, r.arithmetic, "a repeat would be refused as DUPLICATE_TRANSACTION_ID"
                );
                return Err((prepared, Outcome::Skipped { reason: reason::ALREADY_RESTATED, detail }));
            }
        }
        if retracts && shape.adjustments.retraction == Retraction::Skip {
            let message = format!(
                "a full retraction ({}), which this destination does not send (adjustments.retraction = \"skip\")",
                restatement
                    .as_ref()
                    .map_or("no restated_value and no original conversion in the ledger", |r| r.arithmetic.as_str())
            );
            return Err((prepared, Outcome::Rejected { reason: reason::INVALID.to_owned(), messages: vec![message] }));
        }
        Ok(prepared)
    }

    /// Sends one request's worth of events until each has an outcome: resending the rest after
    /// a fast-fail names culprits, and once with a new token after a 401. Returns the outcome
    /// of a refusal that no other request can escape (credentials, access, token endpoint).
    async fn send_group(
        &self,
        live: &[&Claimed],
        parts: &[IngestEvent],
        group: Group,
        refreshed: &mut bool,
        report: &mut SendReport,
    ) -> Option<Outcome> {
        let Group { mut members, validate_only } = group;
        let all = |report: &mut SendReport, members: &[usize], outcome: Outcome, request: Option<usize>| {
            for &i in members {
                report.outcomes.push(result(live[i], &parts[i], outcome.clone(), request));
            }
        };
        while !members.is_empty() {
            if let Some(wait) = self.pace.held() {
                all(report, &members, slowing_down(wait), None);
                return None;
            }
            let before = report.requests.len();
            let bearer = match self.tokens.bearer((self.clock)(), &mut report.requests).await {
                Ok(b) => b,
                Err(e) => {
                    let request = (report.requests.len() > before).then(|| report.requests.len() - 1);
                    let outcome = e.outcome();
                    all(report, &members, outcome.clone(), request);
                    return Some(outcome);
                }
            };
            if let Err(wait) = self.pace.acquire().await {
                all(report, &members, slowing_down(wait), None);
                return None;
            }
            let members_parts: Vec<&IngestEvent> = members.iter().map(|&i| &parts[i]).collect();
            let actions: Vec<&str> = members_parts.iter().map(|p| p.action.as_str()).collect();
            let order = payload::actions(&members_parts);
            let body = payload::request_body(&members_parts, &self.accounts, validate_only);
            let mut ex = self.post_ingest(&bearer, body).await;
            let verdict = answer::read_ingest(&ex, &actions, &order);
            tracing::debug!(destination = %self.name, events = members.len(), status = ?ex.record.status,
                duration_ms = ex.record.duration.as_millis() as u64, "Data Manager events:ingest");
            if let RequestVerdict::Accepted { request_id: Some(id), .. } = &verdict {
                keep_request_id(&mut ex.record.response_excerpt, id);
            }
            let request = Some(report.requests.len());
            report.requests.push(ex.record);
            if let (RequestVerdict::Accepted { request_id: Some(id), .. }, Some(i)) = (&verdict, request) {
                report.follow_ups.push((i, id.clone()));
            }
            match verdict {
                RequestVerdict::Accepted { request_id, warnings } => {
                    let detail = match &request_id {
                        _ if validate_only => "validateOnly: Google found no error in the request".to_owned(),
                        Some(id) => format!("accepted for processing; requestId={id}"),
                        None => "accepted for processing; the answer named no requestId".to_owned(),
                    };
                    for (pos, &i) in members.iter().enumerate() {
                        let mut detail = match warnings.get(&pos) {
                            Some(w) => format!("{detail}; warnings: {}", w.join("; ")),
                            None => detail.clone(),
                        };
                        if let Some(note) = &parts[i].note {
                            detail = format!("{detail}; {note}");
                        }
                        let outcome = Outcome::Delivered { accepted: false, detail: Some(detail) };
                        report.outcomes.push(result(live[i], &parts[i], outcome, request));
                    }
                    return None;
                }
                RequestVerdict::Unauthenticated(what) if !*refreshed => {
                    *refreshed = true;
                    tracing::info!(destination = %self.name, answer = %what, "access token refused; renewing it once");
                    self.tokens.invalidate(&bearer).await;
                }
                RequestVerdict::Unauthenticated(what) => {
                    let outcome = Outcome::halt(format!("Google refused a freshly issued access token: {what}"));
                    all(report, &members, outcome.clone(), request);
                    return Some(outcome);
                }
                RequestVerdict::Isolate(named) => {
                    let mut rest = Vec::with_capacity(members.len());
                    for (pos, &i) in members.iter().enumerate() {
                        match named.get(&pos) {
                            Some(messages) => {
                                let outcome = Outcome::Rejected {
                                    reason: reason::PLATFORM_REJECTED.to_owned(),
                                    messages: messages.clone(),
                                };
                                report.outcomes.push(result(live[i], &parts[i], outcome, request));
                            }
                            None => rest.push(i),
                        }
                    }
                    members = rest;
                }
                RequestVerdict::RejectAll(messages) => {
                    let outcome = Outcome::Rejected { reason: reason::PLATFORM_REJECTED.to_owned(), messages };
                    all(report, &members, outcome, request);
                    return None;
                }
                RequestVerdict::Halt(what) => {
                    let outcome = Outcome::halt(format!("Google Ads refused access: {what}"));
                    all(report, &members, outcome.clone(), request);
                    return Some(outcome);
                }
                RequestVerdict::Retry { reason, after } => {
                    if let RetryAfter::SlowDown(wait) = after {
                        self.pace.hold(wait);
                    }
                    all(report, &members, Outcome::Retry { reason, after }, request);
                    return None;
                }
            }
        }
        None
    }

    async fn post_ingest(&self, bearer: &Bearer, body: Vec<u8>) -> exchange::Exchange {
        let body_sha256 = sha256_hex(&body);
        let kept = String::from_utf8(body.clone()).ok();
        let request = self
            .client
            .post(&self.ingest_url)
            .header(AUTHORIZATION, bearer.header_value())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let mut exchange = exchange::send("events:ingest", request, body_sha256).await;
        exchange.record.body = kept;
        exchange
    }
}

/// One request's worth of events (indices into the batch's parts), and whether Google is only to
/// validate them.
struct Group {
    members: Vec<usize>,
    validate_only: bool,
}

/// Puts the request id at the head of an excerpt that lost it to truncation.
fn keep_request_id(excerpt_text: &mut String, id: &str) {
    if !excerpt_text.contains(id) {
        *excerpt_text = excerpt(format!("requestId={id}; {excerpt_text}").as_bytes());
    }
}

fn slowing_down(wait: Duration) -> Outcome {
    Outcome::Retry {
        reason: "slowing down: keeping to the request quota (requests_per_minute; Google's RESOURCE_EXHAUSTED)".into(),
        after: RetryAfter::SlowDown(wait),
    }
}

fn result(c: &Claimed, p: &IngestEvent, outcome: Outcome, request: Option<usize>) -> DeliveryOutcome {
    DeliveryOutcome { delivery_id: c.delivery_id, outcome, payload_sha256: Some(p.event_sha256.clone()), request }
}
