//! Sending against the Meta simulator: what arrives, how answers are classified, and how a
//! whole-request rejection is narrowed down to the events Meta refuses.

use std::time::Duration as StdDuration;

use serde_json::json;

use super::*;
use crate::core::{Outcome, RetryAfter};
use crate::delivery::{Destination, SendReport};
use crate::platforms::meta::sim::{start, MetaSim};
use crate::platforms::meta::{Meta, ServerEvent, MAX_ISOLATION_REQUESTS, SLOW_DOWN_FLOOR};
use crate::sim::Fault;

async fn setup() -> (MetaSim, Meta, TestConfig) {
    let sim = start().await.unwrap();
    let mut t = config(&sim.base_url);
    t.config.common.timeout_ms = 500;
    let meta = Meta::new(&t.config).unwrap();
    (sim, meta, t)
}

fn outcomes(report: &SendReport) -> Vec<(i64, Outcome)> {
    let mut o: Vec<_> = report.outcomes.iter().map(|r| (r.delivery_id, r.outcome.clone())).collect();
    o.sort_by_key(|(id, _)| *id);
    o
}

fn assert_no_token(report: &SendReport) {
    let text = format!("{report:?}");
    assert!(!text.contains(TOKEN), "the access token leaked: {text}");
}

fn purchases(n: i64) -> Vec<Claimed> {
    (1..=n).map(|i| claimed(i, purchase(&i.to_string()), "Purchase")).collect()
}

#[track_caller]
fn assert_accepted(outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Delivered { accepted: true, .. }), "{outcome:?}");
}

#[tokio::test]
async fn a_batch_is_received_accepted_and_arrives_intact() {
    let (sim, meta, _t) = setup().await;
    let batch = purchases(2);
    assert_eq!(meta.preflight(&batch).await, SendReport::default());
    let report = meta.send(&batch, &[]).await;
    assert_no_token(&report);
    assert_eq!(report.requests.len(), 1);
    let r = &report.requests[0];
    assert_eq!((r.endpoint, r.status, r.error.clone()), ("events", Some(200), None));
    assert!(r.response_excerpt.contains("\"events_received\":2"), "{}", r.response_excerpt);
    for (res, c) in report.outcomes.iter().zip(&batch) {
        assert_accepted(&res.outcome);
        assert_eq!(res.request, Some(0));
        let expected = ServerEvent::new(&c.event, &c.route, false, meta.meta_rules().settings()).event_sha256;
        assert_eq!(res.payload_sha256.as_deref(), Some(expected.as_str()));
    }

    let got = sim.requests();
    assert_eq!(got.len(), 1);
    assert_eq!((got[0].version.as_str(), got[0].pixel_id.as_str()), ("v24.0", "1234567890"));
    assert_eq!(got[0].access_token.as_deref(), Some(TOKEN));
    let events = sim.events_named("Purchase");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event_time, batch[0].event.occurred_at.timestamp());
    assert_eq!(events[0].event_id.as_deref(), Some("order:1:order_paid"));
    assert_eq!(events[1].custom_data.as_ref().unwrap()["order_id"], json!("2"));
    assert_eq!(events[0].test_event_code, None);
    sim.shutdown().await;
}

#[tokio::test]
async fn test_event_code_and_ldu_are_sent_when_configured() {
    let sim = start().await.unwrap();
    let mut t = config(&sim.base_url);
    t.config.test_event_code = Some("TEST12345".into());
    t.config.data_processing_options = vec!["LDU".into()];
    t.config.data_processing_options_country = Some(1);
    t.config.data_processing_options_state = Some(1000);
    let meta = Meta::new(&t.config).unwrap();
    let report = meta.send(&purchases(1), &[]).await;
    assert_accepted(&report.outcomes[0].outcome);
    let e = &sim.received_events()[0];
    assert_eq!(e.test_event_code.as_deref(), Some("TEST12345"));
    assert_eq!(e.raw["data_processing_options"], json!(["LDU"]));
    assert_eq!(e.raw["data_processing_options_country"], json!(1));
    assert_eq!(e.raw["data_processing_options_state"], json!(1000));
    sim.shutdown().await;
}

#[tokio::test]
async fn batches_hold_at_most_batch_size_in_claim_order() {
    let t = config("http://127.0.0.1:1");
    let meta = Meta::new(&t.config).unwrap();
    let claimed: Vec<Claimed> = (0..2500).map(|i| claimed(i, event("lead_qualified", "lead", "L"), "Lead")).collect();
    let batches = meta.batches(claimed);
    assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), vec![1000, 1000, 500]);
    let ids: Vec<i64> = batches.iter().flatten().map(|c| c.delivery_id).collect();
    assert_eq!(ids, (0..2500).collect::<Vec<_>>());
    assert!(meta.batches(Vec::new()).is_empty());

    let mut t = config("http://127.0.0.1:1");
    t.config.batch_size = 3;
    let meta = Meta::new(&t.config).unwrap();
    let sizes: Vec<usize> = meta.batches(purchases(7)).iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![3, 3, 1]);
}

#[tokio::test]
async fn a_send_larger_than_batch_size_goes_in_several_requests() {
    let sim = start().await.unwrap();
    let mut t = config(&sim.base_url);
    t.config.batch_size = 2;
    let meta = Meta::new(&t.config).unwrap();
    let report = meta.send(&purchases(5), &[]).await;
    assert_eq!(report.requests.len(), 3);
    let sizes: Vec<usize> =
        sim.requests().iter().map(|r| r.body.as_ref().unwrap()["data"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert!(report.outcomes.iter().all(|r| matches!(r.outcome, Outcome::Delivered { accepted: true, .. })));
    sim.shutdown().await;
}

#[tokio::test]
async fn one_bad_event_among_ten_is_isolated_and_the_nine_are_delivered() {
    let (sim, meta, _t) = setup().await;
    let mut batch = purchases(10);
    // Passes nothing locally (send does not re-validate): only Meta's own check catches it.
    batch[6].route.action_source = Some("bogus".into());
    let report = meta.send(&batch, &[]).await;
    assert_no_token(&report);
    let statuses: Vec<Option<u16>> = report.requests.iter().map(|r| r.status).collect();
    // [0,10) refused; [0,5) ok; [5,10) refused; [5,7) refused; [5,6) ok; [6,7) refused; [7,10) ok.
    let (ok, bad) = (Some(200), Some(400));
    assert_eq!(statuses, vec![bad, ok, bad, bad, ok, bad, ok]);
    for (id, outcome) in outcomes(&report) {
        if id == 7 {
            match outcome {
                Outcome::Rejected { reason, messages } => {
                    assert_eq!(reason, "platform_rejected");
                    assert!(messages[0].contains("data[0].action_source"), "{messages:?}");
                    assert!(messages[0].starts_with("Meta error 100 (OAuthException)"), "{messages:?}");
                }
                other => panic!("expected a rejection, got {other:?}"),
            }
        } else {
            assert_accepted(&outcome);
        }
    }
    for r in &report.outcomes {
        let request = &report.requests[r.request.unwrap()];
        let expected = if r.delivery_id == 7 { bad } else { ok };
        assert_eq!(request.status, expected, "delivery {} points at the request that decided it", r.delivery_id);
    }
    assert_eq!(sim.received_events().len(), 9);
    assert!(sim.received_events().iter().all(|e| e.event_id.as_deref() != Some("order:7:order_paid")));
    sim.shutdown().await;
}

#[tokio::test]
async fn refusals_no_rule_predicts_are_isolated_too() {
    let (sim, meta, _t) = setup().await;
    sim.refuse_event_id("order:2:order_paid", "blocked by policy");
    sim.refuse_event_id("order:4:order_paid", "blocked by policy");
    let report = meta.send(&purchases(4), &[]).await;
    let rejected: Vec<i64> = outcomes(&report)
        .into_iter()
        .filter_map(|(id, o)| matches!(o, Outcome::Rejected { .. }).then_some(id))
        .collect();
    assert_eq!(rejected, vec![2, 4]);
    assert_eq!(sim.received_events().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_400_that_names_no_culprit_still_delivers_everything() {
    let (sim, meta, _t) = setup().await;
    sim.fail_next_with_error(1, 100, None, false);
    let report = meta.send(&purchases(4), &[]).await;
    assert_eq!(report.requests.len(), 3, "refused once, then both halves taken");
    assert!(report.outcomes.iter().all(|r| matches!(r.outcome, Outcome::Delivered { accepted: true, .. })));
    sim.shutdown().await;
}

#[tokio::test]
async fn isolation_is_bounded_and_never_rejects_the_undecided() {
    let (sim, meta, _t) = setup().await;
    let mut batch = purchases(200);
    for c in &mut batch {
        c.route.action_source = Some("bogus".into());
    }
    let report = meta.send(&batch, &[]).await;
    assert_eq!(report.requests.len(), 1 + MAX_ISOLATION_REQUESTS);
    assert_eq!(report.outcomes.len(), 200);
    for r in &report.outcomes {
        match &r.outcome {
            Outcome::Rejected { messages, .. } => assert!(messages[0].contains("action_source")),
            Outcome::Retry { reason, .. } => assert!(reason.starts_with("rejected with its batch"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    assert!(report.outcomes.iter().any(|r| matches!(r.outcome, Outcome::Retry { .. })));
    sim.shutdown().await;
}

#[tokio::test]
async fn an_expired_token_halts_without_a_retry_storm() {
    let sim = start().await.unwrap();
    let mut t = config(&sim.base_url);
    t.config.batch_size = 2;
    let meta = Meta::new(&t.config).unwrap();
    sim.expire_token();
    let report = meta.send(&purchases(5), &[]).await;
    assert_no_token(&report);
    assert_eq!(report.requests.len(), 1, "the first refusal stops the send");
    assert_eq!(report.requests[0].status, Some(401));
    assert_eq!(report.outcomes.len(), 5);
    for r in &report.outcomes {
        match &r.outcome {
            Outcome::Halt { reason } => {
                assert!(reason.starts_with("access token invalid or expired (code 190)"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(report.outcomes.iter().filter(|r| r.request.is_none()).count(), 3, "two were in the refused request");
    // A rotation the destination has not picked up is the same.
    sim.rotate_token("a-new-token");
    let report = meta.send(&purchases(1), &[]).await;
    assert!(matches!(&report.outcomes[0].outcome, Outcome::Halt { .. }));
    sim.rotate_token(TOKEN);
    assert_accepted(&meta.send(&purchases(1), &[]).await.outcomes[0].outcome);
    sim.shutdown().await;
}

#[tokio::test]
async fn graph_error_families() {
    let (sim, meta, _t) = setup().await;
    let batch = purchases(2);

    sim.fail_next_with_error(1, 2, None, false);
    let report = meta.send(&batch, &[]).await;
    assert_eq!(report.requests[0].status, Some(503));
    assert!(matches!(&report.outcomes[0].outcome, Outcome::Retry { reason, .. } if reason.starts_with("transient:")));

    sim.fail_next_with_error(1, 100, Some(33), true);
    let report = meta.send(&batch, &[]).await;
    assert_eq!(report.requests.len(), 1, "a transient 400 is not split");
    assert!(matches!(&report.outcomes[0].outcome, Outcome::Retry { reason, .. } if reason.starts_with("transient:")));

    for (code, sub) in [(17, None), (4, None), (613, None), (100, Some(2446079))] {
        sim.fail_next_with_error(1, code, sub, false);
        let report = meta.send(&batch, &[]).await;
        assert_eq!(report.requests.len(), 1);
        for r in &report.outcomes {
            match &r.outcome {
                Outcome::Retry { reason, after } => {
                    assert!(reason.starts_with("slow down:"), "{code}: {reason}");
                    assert_eq!(*after, RetryAfter::SlowDown(SLOW_DOWN_FLOOR));
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    for code in [10, 200, 368] {
        sim.fail_next_with_error(1, code, None, false);
        let report = meta.send(&batch, &[]).await;
        assert_eq!(report.requests.len(), 1, "{code}: account-level refusals are not split");
        for r in &report.outcomes {
            assert!(
                matches!(&r.outcome, Outcome::Rejected { messages, .. } if messages[0].starts_with(&format!("Meta error {code}")))
            );
        }
    }
    assert!(sim.received_events().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn server_errors_and_429_are_retried_with_retry_after() {
    let (sim, meta, _t) = setup().await;
    let batch = purchases(1);
    sim.fail_next(1, Fault::Status(503));
    let report = meta.send(&batch, &[]).await;
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("HTTP 503", None))]);
    sim.fail_next(1, Fault::TooManyRequests { retry_after_secs: 7 });
    let report = meta.send(&batch, &[]).await;
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("HTTP 429", Some(StdDuration::from_secs(7))))]);
    // A 403 without a Graph body: rejected with the answer, not split.
    sim.fail_next(1, Fault::Status(403));
    let report = meta.send(&purchases(2), &[]).await;
    assert_eq!(report.requests.len(), 1);
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Rejected { messages, .. } if messages[0] == "HTTP 403: injected fault")
    );
    assert_eq!(sim.fault_count(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn timeouts_and_network_errors_are_retried_without_leaking_the_token() {
    let (sim, meta, _t) = setup().await;
    let batch = purchases(1);
    sim.fail_next(1, Fault::Delay(StdDuration::from_secs(3)));
    let report = meta.send(&batch, &[]).await;
    assert_no_token(&report);
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("timeout", None))]);
    assert!(report.requests[0].error.is_some());
    assert_eq!(sim.received_events().len(), 1, "processed, answer lost: the in-doubt case Meta dedupes");

    sim.shutdown().await;
    let report = meta.send(&batch, &[]).await;
    assert_no_token(&report);
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Retry { reason, .. } if reason.starts_with("network error"))
    );
}

#[tokio::test]
async fn browser_and_server_sends_and_resends_dedupe_to_one() {
    let (sim, meta, _t) = setup().await;
    let mut e = purchase("1042");
    e.identity.browser_event_id = Some("pixel-evt-1042".into());
    let mut c = claimed(1, e, "Purchase");
    c.route.browser_tracked = true;
    sim.record_browser_event("pixel-evt-1042", "Purchase");
    assert_accepted(&meta.send(std::slice::from_ref(&c), &[]).await.outcomes[0].outcome);
    assert_eq!(sim.deduplicated_count(), 1, "the pixel's event and ours are one");
    assert!(sim.unique_events().is_empty());

    // A resend (in-doubt, replay) of a server-only event is one too.
    let plain = purchases(1);
    meta.send(&plain, &[]).await;
    meta.send(&plain, &[]).await;
    assert_eq!(sim.deduplicated_count(), 2);
    assert_eq!(sim.unique_events().len(), 1);
    assert_eq!(sim.received_events().len(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn what_the_adapter_finds_valid_the_simulator_takes() {
    let (sim, meta, _t) = setup().await;
    let mut web = purchase("3");
    web.attributes.insert("event_source_url".into(), json!("https://shop.example/thanks"));
    let mut web_c = claimed(3, web, "Purchase");
    web_c.route.action_source = Some("website".into());
    let mut stripped = claimed(4, purchase("4"), "Purchase");
    stripped.strip_personal = true;
    let mut store = claimed(5, purchase("5"), "Purchase");
    store.route.action_source = Some("physical_store".into());
    let batch = vec![
        claimed(1, purchase("1"), "Purchase"),
        claimed(2, event("lead_qualified", "lead", "L-1"), "Lead"),
        web_c,
        stripped,
        store,
    ];
    let rules = meta.rules();
    for c in &batch {
        assert_eq!(rules.validate(&c.event, &c.route, c.strip_personal), Vec::<String>::new());
    }
    let report = meta.send(&batch, &[]).await;
    assert_eq!(report.requests.len(), 1, "{:?}", report.requests);
    report.outcomes.iter().for_each(|r| assert_accepted(&r.outcome));
    sim.shutdown().await;
}

#[tokio::test]
async fn what_the_adapter_refuses_the_simulator_refuses_too() {
    let (sim, meta, _t) = setup().await;
    let mut no_currency = purchase("1");
    no_currency.currency = None;
    let mut web = claimed(2, purchase("2"), "Purchase");
    web.route.action_source = Some("website".into());
    let mut nobody = event("lead_qualified", "lead", "L-1");
    nobody.identity = Identity::default();
    let cases = vec![claimed(1, no_currency, "Purchase"), web, claimed(3, nobody, "Lead")];
    let rules = meta.rules();
    for c in cases {
        assert!(!rules.validate(&c.event, &c.route, false).is_empty());
        let report = meta.send(std::slice::from_ref(&c), &[]).await;
        assert!(matches!(report.outcomes[0].outcome, Outcome::Rejected { .. }), "{:?}", report.outcomes[0]);
    }
    assert!(sim.received_events().is_empty());
    sim.shutdown().await;
}
