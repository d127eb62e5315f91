//! Sending and preflight against the GA4 simulator: what arrives, and how answers are classified.

use std::time::Duration as StdDuration;

use serde_json::json;

use super::*;
use crate::core::Outcome;
use crate::delivery::{Destination, SendReport};
use crate::platforms::ga4::sim::{start, Ga4Sim, ReceivedEvent};
use crate::platforms::ga4::{Ga4, Ga4Event};
use crate::sim::Fault;

async fn setup(preflight: bool) -> (Ga4Sim, Ga4, TestConfig) {
    let sim = start().await.unwrap();
    let mut t = config(&sim.base_url);
    t.config.validate_with_debug_endpoint = preflight;
    t.config.common.timeout_ms = 500;
    let ga4 = Ga4::new(&t.config).unwrap();
    (sim, ga4, t)
}

fn outcomes(report: &SendReport) -> Vec<(i64, Outcome)> {
    report.outcomes.iter().map(|r| (r.delivery_id, r.outcome.clone())).collect()
}

fn assert_no_secret(report: &SendReport) {
    let text = format!("{report:?}");
    assert!(!text.contains(SECRET), "the api_secret leaked: {text}");
}

#[tokio::test]
async fn a_2xx_is_sent_not_accepted_and_arrives_intact() {
    let (sim, ga4, _t) = setup(false).await;
    let batch = vec![claimed(1, purchase("1042"), "purchase"), claimed(2, purchase("1043"), "purchase")];
    assert_eq!(ga4.preflight(&batch).await, SendReport::default(), "no preflight unless configured");
    let report = ga4.send(&batch, &[]).await;
    assert_no_secret(&report);
    assert_eq!(report.requests.len(), 1);
    let request = &report.requests[0];
    assert_eq!((request.endpoint, request.status, request.error.clone()), ("collect", Some(204), None));
    for (r, c) in report.outcomes.iter().zip(&batch) {
        let Outcome::Delivered { accepted: false, detail: Some(detail) } = &r.outcome else {
            panic!("{:?}", r.outcome)
        };
        // The stitched session (started at 1700000000) is long closed: the detail says so.
        assert!(detail.starts_with("sent: GA4 answers 2xx to any payload; session_age_secs="), "{detail}");
        assert!(detail.ends_with("(past GA4's 30-minute session timeout)"), "{detail}");
        assert_eq!(r.request, Some(0));
        let expected = Ga4Event::new(&c.event, &c.route, false).event_sha256;
        assert_eq!(r.payload_sha256.as_deref(), Some(expected.as_str()));
    }

    assert_eq!(sim.request_count(), 1);
    assert_eq!(sim.debug_request_count(), 0);
    let got = sim.events_named("purchase");
    assert_eq!(got.len(), 2);
    let e = &batch[0].event;
    assert_eq!(got[0].client_id.as_deref(), Some("1234567890.1700000000"));
    assert_eq!(got[0].user_id.as_deref(), Some("u-77"));
    assert_eq!(got[0].measurement_id.as_deref(), Some("G-TEST123"));
    assert_eq!(got[0].timestamp_micros, Some(e.occurred_at.timestamp_micros()));
    assert_eq!(got[0].params["transaction_id"], json!("1042"));
    assert_eq!(got[1].params["transaction_id"], json!("1043"));
    let query = &sim.requests()[0].query;
    assert!(query.contains(&("api_secret".into(), SECRET.into())));
    sim.shutdown().await;
}

#[tokio::test]
async fn resends_carry_the_same_payload_hash() {
    let (sim, ga4, _t) = setup(false).await;
    let batch = vec![claimed(1, purchase("1042"), "purchase")];
    let first = ga4.send(&batch, &[]).await;
    let again = ga4.send(&batch, &[]).await;
    assert_eq!(first.outcomes[0].payload_sha256, again.outcomes[0].payload_sha256);
    // The two receipts differ only by arrival time.
    let mut events = sim.received_events();
    let second = events.pop().unwrap();
    let first = events.pop().unwrap();
    assert_eq!(ReceivedEvent { received_at: first.received_at, ..second }, first);
    sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_and_429_are_retried_with_retry_after() {
    let (sim, ga4, _t) = setup(false).await;
    let batch = vec![claimed(1, purchase("1"), "purchase")];

    sim.fail_next(1, Fault::Status(503));
    let report = ga4.send(&batch, &[]).await;
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("HTTP 503", None))]);
    assert_eq!(report.requests[0].status, Some(503));
    assert!(report.requests[0].response_excerpt.contains("injected fault"));

    sim.fail_next(1, Fault::TooManyRequests { retry_after_secs: 7 });
    let report = ga4.send(&batch, &[]).await;
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("HTTP 429", Some(StdDuration::from_secs(7))))]);
    assert_eq!(sim.request_count(), 0, "faulted requests are not processed");
    assert_eq!(sim.fault_count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn other_4xx_is_rejected_with_the_answer() {
    let (sim, ga4, _t) = setup(false).await;
    sim.fail_next(1, Fault::Status(403));
    let report = ga4.send(&[claimed(1, purchase("1"), "purchase")], &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Rejected { reason, messages } => {
            assert_eq!(reason, "platform_rejected");
            assert!(messages[0].starts_with("HTTP 403: "), "{messages:?}");
            assert!(messages[0].contains("injected fault"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn timeouts_and_network_errors_are_retried_without_leaking_the_secret() {
    let (sim, ga4, _t) = setup(false).await;
    let batch = vec![claimed(1, purchase("1"), "purchase")];
    sim.fail_next(1, Fault::Delay(StdDuration::from_secs(3)));
    let report = ga4.send(&batch, &[]).await;
    assert_no_secret(&report);
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("timeout", None))]);
    assert!(report.requests[0].error.is_some());

    sim.shutdown().await;
    let report = ga4.send(&batch, &[]).await;
    assert_no_secret(&report);
    match &report.outcomes[0].outcome {
        Outcome::Retry { reason, .. } => assert!(reason.starts_with("network error"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn preflight_rejects_only_the_events_the_debug_endpoint_names() {
    let (sim, ga4, _t) = setup(true).await;
    let mut bad = purchase("2");
    bad.currency = None; // value without currency: the simulator must catch it on its own
    let batch =
        vec![claimed(1, purchase("1"), "purchase"), claimed(2, bad, "purchase"), claimed(3, purchase("3"), "purchase")];
    let pre = ga4.preflight(&batch).await;
    assert_eq!(pre.requests.len(), 1);
    assert_eq!(pre.requests[0].endpoint, "debug");
    assert_eq!(pre.outcomes.len(), 1);
    assert_eq!(pre.outcomes[0].delivery_id, 2);
    match &pre.outcomes[0].outcome {
        Outcome::Rejected { reason, messages } => {
            assert_eq!(reason, "invalid");
            assert!(messages.iter().any(|m| m.contains("events[1].params.currency")), "{messages:?}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(sim.debug_request_count(), 1);
    assert!(sim.received_events().is_empty(), "debug events are not reported");

    // The worker sends what the preflight let through: validated, so accepted.
    let rest: Vec<Claimed> = batch.into_iter().filter(|c| c.delivery_id != 2).collect();
    let report = ga4.send(&rest, &pre.validated).await;
    for r in &report.outcomes {
        assert!(matches!(r.outcome, Outcome::Delivered { accepted: true, .. }), "{:?}", r.outcome);
    }
    // A send without a preflight's word is merely sent.
    let report = ga4.send(&rest, &[]).await;
    assert!(matches!(report.outcomes[0].outcome, Outcome::Delivered { accepted: false, .. }));
    sim.shutdown().await;
}

#[tokio::test]
async fn preflight_messages_not_tied_to_an_event_reject_the_whole_batch() {
    let (sim, ga4, _t) = setup(true).await;
    let mut no_client = purchase("1");
    no_client.identity.client_id = None;
    let batch = vec![claimed(1, no_client.clone(), "purchase"), claimed(2, no_client, "purchase")];
    let pre = ga4.preflight(&batch).await;
    assert_eq!(pre.outcomes.len(), 2);
    for r in &pre.outcomes {
        match &r.outcome {
            Outcome::Rejected { messages, .. } => {
                assert!(messages.iter().any(|m| m.starts_with("client_id:")), "{messages:?}")
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn preflight_retries_everything_when_the_debug_endpoint_fails() {
    let (sim, ga4, _t) = setup(true).await;
    let batch = vec![claimed(1, purchase("1"), "purchase"), claimed(2, purchase("2"), "purchase")];
    sim.fail_next(1, Fault::Status(500));
    let pre = ga4.preflight(&batch).await;
    assert_eq!(outcomes(&pre), vec![(1, Outcome::retry("HTTP 500", None)), (2, Outcome::retry("HTTP 500", None)),]);
    assert_no_secret(&pre);
    let pre = ga4.preflight(&batch).await;
    assert!(pre.outcomes.is_empty(), "valid: nothing refused");
    sim.shutdown().await;
}

#[tokio::test]
async fn what_the_adapter_finds_valid_the_simulator_does_too() {
    let (sim, ga4, _t) = setup(true).await;
    let mut lead = event("lead_qualified", "lead", "L-1");
    lead.value = Some(10.0);
    lead.currency = Some(Currency::parse("EUR").unwrap());
    lead.attributes.insert("source".into(), json!("crm"));
    let mut refund = purchase("1042");
    refund.items.clear();
    let mut stripped = claimed(4, purchase("9"), "purchase");
    stripped.strip_personal = true;
    let batch = vec![
        claimed(1, purchase("1"), "purchase"),
        claimed(2, lead, "qualify_lead"),
        claimed(3, refund, "refund"),
        stripped,
    ];
    let rules = ga4.rules();
    for c in &batch {
        assert!(rules.validate(&c.event, &c.route, c.strip_personal).is_empty());
    }
    let pre = ga4.preflight(&batch).await;
    assert!(pre.outcomes.is_empty(), "{:#?}", pre.outcomes);
    sim.shutdown().await;
}
