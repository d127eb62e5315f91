//! Sending against the simulator: what arrives, fast-fail isolation, and how answers are classified.

use std::time::Duration as StdDuration;

use serde_json::json;

use super::*;
use crate::core::{Outcome, RetryAfter};
use crate::delivery::Destination;
use crate::platforms::google_ads::sim::Endpoint;
use crate::platforms::google_ads::{request_id, GoogleAds, SLOW_DOWN};
use crate::sim::Fault;

fn delivered_detail(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Delivered { accepted: false, detail: Some(d) } => d,
        other => panic!("expected delivered (not yet accepted), got {other:?}"),
    }
}

#[tokio::test]
async fn a_batch_arrives_with_its_destinations_and_is_accepted_for_processing() {
    let (sim, gads, _t) = setup().await;
    let batch = vec![
        claimed(1, purchase("1042"), ACTION),
        claimed(2, purchase("1043"), "555"),
        claimed(3, purchase("1044"), ACTION),
    ];
    assert_eq!(gads.preflight(&batch).await, crate::delivery::SendReport::default());
    let report = gads.send(&batch, &[]).await;
    assert_no_secret(&format!("{report:?}"), &sim);
    assert_eq!(report.requests.len(), 1);
    let record = &report.requests[0];
    assert_eq!((record.endpoint, record.status, record.error.clone()), ("events:ingest", Some(200), None));
    let id = request_id(record.response_excerpt.as_bytes()).expect("the requestId is in the excerpt");
    assert_eq!(sim.requests_to(Endpoint::Ingest)[0].request_id.as_deref(), Some(id.as_str()));
    assert_eq!(
        report.outcomes.iter().map(|r| r.delivery_id).collect::<Vec<_>>(),
        vec![1, 3, 2],
        "by conversion action"
    );
    for r in &report.outcomes {
        let c = batch.iter().find(|c| c.delivery_id == r.delivery_id).unwrap();
        assert_eq!(delivered_detail(&r.outcome), format!("accepted for processing; requestId={id}"));
        assert_eq!(r.request, Some(0));
        let expected = IngestEvent::new(&c.event, &c.route, false, &shape()).event_sha256;
        assert_eq!(r.payload_sha256.as_deref(), Some(expected.as_str()));
    }
    let got = sim.received_events();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].customer_id, "1234567890");
    assert_eq!(got[0].login_customer_id.as_deref(), Some("1112223333"));
    let by_action: Vec<(&str, &str)> =
        got.iter().map(|e| (e.conversion_action.as_str(), e.transaction_id.as_deref().unwrap())).collect();
    assert!(by_action.contains(&("555", "1043")) && by_action.contains(&(ACTION, "1042")), "{by_action:?}");
    let c = sim.conversion(ACTION, "1042").unwrap();
    assert_eq!((c.value, c.currency.as_deref(), c.adjustments), (Some(59.9), Some("EUR"), 0));
    let body = sim.requests_to(Endpoint::Ingest)[0].body.clone().unwrap();
    assert_eq!(body["destinations"].as_array().unwrap().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn fast_fail_rejects_only_the_named_events_and_resends_the_rest() {
    let (sim, gads, _t) = setup().await;
    let mut batch: Vec<Claimed> = (0..10).map(|i| claimed(i, purchase(&format!("o{i}")), ACTION)).collect();
    // Two events Google refuses (planning would have caught them; the platform must too).
    batch[3].event.identity.gclid = None;
    batch[3].event.identity.gbraid = Some("gb".into());
    batch[3].event.identity.wbraid = Some("wb".into());
    batch[7].event.currency = None;
    let report = gads.send(&batch, &[]).await;
    let statuses: Vec<Option<u16>> = report.requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![Some(400), Some(200)], "one refused request, one resend");
    let mut delivered = 0;
    for r in &report.outcomes {
        match (&r.outcome, r.delivery_id) {
            (Outcome::Rejected { reason, messages }, 3) => {
                assert_eq!(reason, "platform_rejected");
                assert!(messages.iter().any(|m| m.contains("gbraid and wbraid cannot both be set")), "{messages:?}");
                assert!(messages.iter().all(|m| m.starts_with("event.adIdentifiers")), "{messages:?}");
                assert_eq!(r.request, Some(0));
            }
            (Outcome::Rejected { messages, .. }, 7) => {
                assert!(messages
                    .iter()
                    .any(|m| m.starts_with("event.currency:") && m.contains("REQUIRED_FIELD_MISSING")));
            }
            (Outcome::Delivered { .. }, id) if id != 3 && id != 7 => {
                delivered += 1;
                assert_eq!(r.request, Some(1));
            }
            (other, id) => panic!("delivery {id}: unexpected {other:?}"),
        }
    }
    assert_eq!((delivered, report.outcomes.len()), (8, 10));
    assert_eq!(sim.conversions().len(), 8);
    assert!(sim.conversion(ACTION, "o3").is_none() && sim.conversion(ACTION, "o7").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bad_conversion_action_rejects_its_events_only() {
    let (sim, gads, _t) = setup().await;
    let batch = vec![
        claimed(1, purchase("1"), "not-an-id"),
        claimed(2, purchase("2"), ACTION),
        claimed(3, purchase("3"), "not-an-id"),
    ];
    let report = gads.send(&batch, &[]).await;
    let o = outcomes(&report);
    assert!(
        matches!(&o[0].1, Outcome::Rejected { messages, .. } if messages[0].contains("INVALID_CONVERSION_ACTION_ID")),
        "{o:?}"
    );
    assert!(matches!(&o[1].1, Outcome::Rejected { .. }));
    assert!(matches!(&o[2].1, Outcome::Delivered { .. }));
    assert_eq!(o[2].0, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_400_naming_no_event_rejects_all() {
    let (sim, gads, _t) = setup().await;
    sim.fail_next(1, Fault::Status(400));
    let report = gads.send(&[claimed(1, purchase("1"), ACTION), claimed(2, purchase("2"), ACTION)], &[]).await;
    assert_eq!(report.requests.len(), 1);
    for (_, o) in outcomes(&report) {
        match o {
            Outcome::Rejected { reason, messages } => {
                assert_eq!(reason, "platform_rejected");
                assert!(messages[0].starts_with("HTTP 400 INVALID_ARGUMENT: injected fault"), "{messages:?}");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn resource_exhausted_slows_down_for_at_least_a_minute() {
    let (sim, gads, _t) = setup().await;
    let batch = [claimed(1, purchase("1"), ACTION)];
    sim.set_quota_per_minute(Some(0));
    let report = gads.send(&batch, &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Retry { reason, after } => {
            assert!(reason.contains("RESOURCE_EXHAUSTED") && reason.contains("slowing down"), "{reason}");
            assert_eq!(*after, RetryAfter::SlowDown(SLOW_DOWN), "no Retry-After: the 60 s floor");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    // Meanwhile this destination asks nothing of Google: the next send waits its turn locally.
    sim.set_quota_per_minute(None);
    let report = gads.send(&batch, &[]).await;
    assert!(report.requests.is_empty());
    match &report.outcomes[0].outcome {
        Outcome::Retry { after: RetryAfter::SlowDown(wait), .. } => {
            assert!(*wait > StdDuration::from_secs(50), "{wait:?}")
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(sim.requests_to(Endpoint::Ingest).len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_longer_retry_after_is_honoured() {
    let (sim, gads, _t) = setup().await;
    sim.fail_next(1, Fault::TooManyRequests { retry_after_secs: 120 });
    let report = gads.send(&[claimed(1, purchase("1"), ACTION)], &[]).await;
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Retry { after: RetryAfter::SlowDown(w), .. } if *w == StdDuration::from_secs(120))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unavailable_and_deadline_exceeded_are_retried() {
    let (sim, gads, _t) = setup().await;
    let batch = [claimed(1, purchase("1"), ACTION)];
    for (code, name) in [(503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED"), (500, "INTERNAL")] {
        sim.fail_next(1, Fault::Status(code));
        let report = gads.send(&batch, &[]).await;
        match &report.outcomes[0].outcome {
            Outcome::Retry { reason, after: RetryAfter::Backoff } => {
                assert!(reason.starts_with(&format!("HTTP {code} {name}")), "{reason}");
            }
            other => panic!("expected a retry, got {other:?}"),
        }
    }
    let report = gads.send(&batch, &[]).await;
    assert!(matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }), "and they heal");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_is_renewed_once_within_the_send() {
    let (sim, gads, _t) = setup().await;
    let batch = [claimed(1, purchase("1"), ACTION)];
    gads.send(&batch, &[]).await;
    sim.revoke_tokens();
    let report = gads.send(&batch, &[]).await;
    let statuses: Vec<(&str, Option<u16>)> = report.requests.iter().map(|r| (r.endpoint, r.status)).collect();
    assert_eq!(statuses, vec![("events:ingest", Some(401)), ("events:ingest", Some(200))]);
    assert!(matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }));
    assert_eq!(report.outcomes[0].request, Some(1));
    assert_eq!(sim.token_grants(), 2);

    sim.fail_next(2, Fault::Status(401));
    let report = gads.send(&batch, &[]).await;
    assert_eq!(report.requests.len(), 2, "renewed once, then given up");
    match &report.outcomes[0].outcome {
        Outcome::Halt { reason } => {
            assert!(reason.starts_with("Google refused a freshly issued access token: "), "{reason}");
            assert!(reason.contains("UNAUTHENTICATED"), "{reason}")
        }
        other => panic!("expected a halt, got {other:?}"),
    }
    assert_no_secret(&format!("{report:?}"), &sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn permission_denied_halts_instead_of_rejecting() {
    let (sim, gads, _t) = setup().await;
    sim.fail_next(1, Fault::Status(403));
    let report = gads.send(&[claimed(1, purchase("1"), ACTION)], &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Halt { reason } => {
            assert!(reason.starts_with("Google Ads refused access: HTTP 403 PERMISSION_DENIED"), "{reason}")
        }
        other => panic!("expected a halt, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_answer_is_retried_and_the_resend_restates_not_duplicates() {
    let (sim, gads, _t) = setup().await;
    let batch = [claimed(1, purchase("1"), ACTION)];
    sim.fail_next(1, Fault::Delay(StdDuration::from_secs(3)));
    let report = gads.send(&batch, &[]).await;
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("timeout", None))]);
    let again = gads.send(&batch, &[]).await;
    assert!(matches!(again.outcomes[0].outcome, Outcome::Delivered { .. }));
    assert_eq!(report.outcomes[0].payload_sha256, again.outcomes[0].payload_sha256, "the same event object (G2)");
    assert_eq!(sim.conversions().len(), 1, "Google keeps one conversion per transactionId (G4)");
    assert_eq!(sim.conversion(ACTION, "1").unwrap().adjustments, 0, "the same event again, not a restatement");
    sim.shutdown().await;
}

#[tokio::test]
async fn refunds_restate_the_order_and_a_full_refund_zeroes_it() {
    let (sim, gads, _t) = setup().await;
    gads.send(&[claimed(1, purchase("1042"), ACTION), claimed(2, purchase("1043"), ACTION)], &[]).await;
    let report = gads
        .send(&[claimed(3, refund("1042", Some(49.9)), ACTION), claimed(4, refund("1043", None), ACTION)], &[])
        .await;
    assert!(report.outcomes.iter().all(|r| matches!(r.outcome, Outcome::Delivered { .. })), "{report:?}");
    let partial = sim.conversion(ACTION, "1042").unwrap();
    assert_eq!((partial.value, partial.adjustments), (Some(49.9), 1));
    let full = sim.conversion(ACTION, "1043").unwrap();
    assert_eq!((full.value, full.adjustments), (Some(0.0), 1));
    assert_eq!(sim.conversions().len(), 2, "adjustments create no conversions");
    sim.shutdown().await;
}

#[tokio::test]
async fn network_errors_are_retried() {
    let (sim, gads, _t) = setup().await;
    gads.send(&[claimed(1, purchase("1"), ACTION)], &[]).await; // a token is cached
    sim.shutdown().await;
    let report = gads.send(&[claimed(1, purchase("1"), ACTION)], &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Retry { reason, .. } => assert!(reason.starts_with("network error"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn batches_keep_to_ten_conversion_actions_and_the_batch_size() {
    let (sim, _gads, mut t) = setup().await;
    t.config.batch_size = 4;
    let gads = GoogleAds::new(&t.config).unwrap();
    let claimed: Vec<Claimed> =
        (0..25).map(|i| claimed(i, purchase(&i.to_string()), &(100 + i % 12).to_string())).collect();
    let batches = gads.batches(claimed.clone());
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 25);
    assert!(batches.iter().all(|b| b.len() <= 4));
    // send() keeps the limits too, whatever it is given.
    let report = gads.send(&claimed, &[]).await;
    assert!(report.requests.len() >= 7);
    assert!(report.outcomes.iter().all(|r| matches!(r.outcome, Outcome::Delivered { .. })));
    for r in sim.requests_to(Endpoint::Ingest) {
        let body = r.body.unwrap();
        assert!(body["events"].as_array().unwrap().len() <= 4);
        assert!(body["destinations"].as_array().unwrap().len() <= 10);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn field_warnings_of_a_success_reach_the_event_they_name() {
    // A stand-in answer: the simulator gives no warnings, so the reading is tested on its own.
    let ex = crate::delivery::http::Exchange {
        record: crate::core::RequestRecord {
            endpoint: "events:ingest",
            sent_at: Utc::now(),
            duration: StdDuration::ZERO,
            status: Some(200),
            error: None,
            response_excerpt: String::new(),
            body_sha256: String::new(),
            body: None,
        },
        body: json!({"requestId": "r-1", "fieldWarnings": [
            {"field": "events[1].currency", "reason": "INVALID_CURRENCY_CODE", "description": "ignored"}]})
        .to_string()
        .into_bytes(),
        retry_after: None,
        timed_out: false,
    };
    match crate::platforms::google_ads::answer::read_ingest(&ex, &[ACTION, ACTION], &[ACTION]) {
        crate::platforms::google_ads::RequestVerdict::Accepted { request_id, warnings } => {
            assert_eq!(request_id.as_deref(), Some("r-1"));
            assert_eq!(warnings.get(&1).unwrap(), &vec!["event.currency: ignored [INVALID_CURRENCY_CODE]".to_owned()]);
            assert!(!warnings.contains_key(&0));
        }
        other => panic!("{other:?}"),
    }
}
