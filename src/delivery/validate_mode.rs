//! `mode = "validate"`: a destination that sends nothing for real. Each batch is built and
//! checked against the platform's validation route ([`Destination::validate_only`]: GA4's debug
//! endpoint, Meta's `test_event_code`, the Data Manager API's `validateOnly`), and each delivery
//! ends `skipped:validate_only` with the platform's verdict in its detail — nothing is counted by
//! the platform. A replay releases them once the destination is live (`store::rules`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::FutureExt;

use super::{Check, DeliveryOutcome, Destination, SendReport};
use crate::core::delivery::reason;
use crate::core::pii::hash_email;
use crate::core::plan::Rules;
use crate::core::{
    Claimed, Consent, ConsentState, Currency, Event, EventId, FollowUp, Identity, Kind, Outcome, Route, Subject,
};

/// A destination in validate mode: its adapter, asked to validate instead of send.
pub struct ValidateMode {
    inner: Arc<dyn Destination>,
}

impl ValidateMode {
    pub fn new(inner: Arc<dyn Destination>) -> Self {
        Self { inner }
    }
}

/// What a validation answer means for a delivery in validate mode: a verdict ends it
/// `skipped:validate_only` (valid, refused, credentials refused: all said in the detail); only a
/// platform that could not answer (`Retry`) leaves it to be checked again later. A skip the
/// adapter decided on its own (`already_restated`) stays what it is.
pub fn verdict(outcome: Outcome) -> Outcome {
    let detail = match outcome {
        Outcome::Retry { .. } | Outcome::Skipped { .. } => return outcome,
        Outcome::Delivered { detail, .. } => {
            format!("validate mode, the platform's verdict: valid ({})", detail.unwrap_or_else(|| "no detail".into()))
        }
        Outcome::Rejected { reason: why, messages } => {
            format!("validate mode, the platform's verdict: refused, {why}: {}", messages.join("; "))
        }
        Outcome::Halt { reason: why } => {
            format!("validate mode, the platform's verdict: credentials or access refused: {why}")
        }
    };
    Outcome::Skipped { reason: reason::VALIDATE_ONLY, detail: format!("{detail}; nothing was counted") }
}

/// A batch checked without the platform: each payload built and the platform's documented rules
/// run ([`Rules::validate`]). `why` says why the platform was not asked.
pub fn locally(rules: &dyn Rules, batch: &[Claimed], why: &str) -> SendReport {
    let outcomes = batch
        .iter()
        .map(|c| {
            let messages = rules.validate(&c.event, &c.route, c.strip_personal);
            let outcome = if messages.is_empty() {
                let detail = format!("{why}: the payload was built and passed the local checks only");
                Outcome::Delivered { accepted: false, detail: Some(detail) }
            } else {
                Outcome::Rejected { reason: format!("{} ({why}; local checks)", reason::INVALID), messages }
            };
            DeliveryOutcome { delivery_id: c.delivery_id, outcome, payload_sha256: None, request: None }
        })
        .collect();
    SendReport { outcomes, ..SendReport::default() }
}

/// A made-up purchase for `surety destinations test`'s checks that need a real payload (only
/// ever sent to a validation route): fixed ids, `now` as its time, a click id, a hashed email.
pub fn test_event(route: &Route, now: DateTime<Utc>) -> Claimed {
    let subject = Subject { kind: "surety_test".into(), id: "destination-test".into() };
    let kind = Kind::parse("order_paid").unwrap_or_else(|_| unreachable!("a valid kind"));
    let event = Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: now,
        received_at: now,
        subject,
        value: Some(1.0),
        currency: Currency::parse("EUR").ok(),
        items: vec![],
        identity: Identity {
            client_id: Some("1000000000.1000000000".into()),
            email: hash_email("destination-test@example.com").ok(),
            gclid: Some("surety-destination-test".into()),
            li_fat_id: Some("surety-destination-test".into()),
            ..Identity::default()
        },
        consent: Consent {
            analytics: Some(ConsentState::Granted),
            ad_user_data: Some(ConsentState::Granted),
            ad_personalization: Some(ConsentState::Denied),
        },
        attributes: Default::default(),
        joined: vec![],
    };
    Claimed {
        delivery_id: 0,
        event,
        route: route.clone(),
        attempts: 0,
        strip_personal: false,
        created_at: now,
        forced: false,
    }
}

async fn check_batch(inner: &dyn Destination, batch: &[Claimed]) -> SendReport {
    let mut report = inner.validate_only(batch).await;
    report.validated.clear();
    report.follow_ups.clear();
    for o in &mut report.outcomes {
        o.outcome = verdict(std::mem::replace(&mut o.outcome, Outcome::retry("", None)));
    }
    // Every delivery gets an outcome here, so none reaches `send`.
    for c in batch {
        if !report.outcomes.iter().any(|o| o.delivery_id == c.delivery_id) {
            report.outcomes.push(DeliveryOutcome {
                delivery_id: c.delivery_id,
                outcome: Outcome::retry("validate mode: the adapter gave no verdict", None),
                payload_sha256: None,
                request: None,
            });
        }
    }
    report
}

impl Destination for ValidateMode {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn rules(&self) -> Arc<dyn Rules> {
        self.inner.rules()
    }

    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }

    fn batches(&self, claimed: Vec<Claimed>) -> Vec<Vec<Claimed>> {
        self.inner.batches(claimed)
    }

    /// The whole check happens here, before anything is marked as sending: a validation is not
    /// a send, and a crash during it leaves nothing in doubt.
    fn preflight<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        check_batch(self.inner.as_ref(), batch).boxed()
    }

    /// Never reached (the preflight answers for every delivery); if it were, nothing is sent.
    fn send<'a>(&'a self, batch: &'a [Claimed], _validated: &'a [i64]) -> BoxFuture<'a, SendReport> {
        let outcomes = batch
            .iter()
            .map(|c| DeliveryOutcome {
                delivery_id: c.delivery_id,
                outcome: Outcome::retry("validate mode sends nothing", None),
                payload_sha256: None,
                request: None,
            })
            .collect();
        async move { SendReport { outcomes, ..SendReport::default() } }.boxed()
    }

    fn follow_up_after(&self) -> Option<Duration> {
        None
    }

    fn attach_ledger(&self, ledger: Arc<dyn crate::store::Store>) {
        self.inner.attach_ledger(ledger);
    }

    fn follow_up<'a>(&'a self, platform_request_id: &'a str) -> BoxFuture<'a, FollowUp> {
        self.inner.follow_up(platform_request_id)
    }

    fn check<'a>(&'a self, routes: &'a [Route]) -> BoxFuture<'a, Vec<Check>> {
        self.inner.check(routes)
    }

    fn validate_only<'a>(&'a self, batch: &'a [Claimed]) -> BoxFuture<'a, SendReport> {
        self.inner.validate_only(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_ends_validate_only_and_only_a_transient_failure_waits() {
        let valid = verdict(Outcome::Delivered { accepted: true, detail: Some("debug endpoint: no messages".into()) });
        let Outcome::Skipped { reason: why, detail } = valid else { panic!("{valid:?}") };
        assert_eq!(why, reason::VALIDATE_ONLY);
        assert!(detail.contains("valid (debug endpoint: no messages)") && detail.contains("nothing was counted"));

        let refused = verdict(Outcome::Rejected { reason: "invalid".into(), messages: vec!["events[0].name".into()] });
        assert!(matches!(&refused, Outcome::Skipped { reason: r, detail } if *r == reason::VALIDATE_ONLY
            && detail.contains("refused, invalid: events[0].name")));

        let halted = verdict(Outcome::halt("HTTP 401"));
        assert!(
            matches!(&halted, Outcome::Skipped { detail, .. } if detail.contains("credentials or access refused: HTTP 401"))
        );

        let retry = Outcome::retry("HTTP 503", None);
        assert_eq!(verdict(retry.clone()), retry);
        let own = Outcome::Skipped { reason: reason::ALREADY_RESTATED, detail: "same value".into() };
        assert_eq!(verdict(own.clone()), own);
    }
}
