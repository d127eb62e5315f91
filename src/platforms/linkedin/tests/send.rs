//! Sending against the LinkedIn simulator: what arrives, and how each answer is read.

use std::time::Duration as StdDuration;

use serde_json::json;

use super::*;
use crate::core::{Outcome, RetryAfter};
use crate::delivery::{Destination, SendReport};
use crate::platforms::linkedin::sim::{start, LinkedinSim};
use crate::platforms::linkedin::{ConversionElement, Linkedin};
use crate::sim::Fault;

async fn setup() -> (LinkedinSim, Linkedin, TestConfig) {
    let sim = start().await.unwrap();
    sim.set_access_token(Some(TOKEN));
    let mut t = config(&sim.base_url);
    t.config.common.timeout_ms = 500;
    let linkedin = Linkedin::new(&t.config).unwrap();
    (sim, linkedin, t)
}

fn outcomes(report: &SendReport) -> Vec<(i64, Outcome)> {
    let mut o: Vec<(i64, Outcome)> = report.outcomes.iter().map(|r| (r.delivery_id, r.outcome.clone())).collect();
    o.sort_by_key(|(id, _)| *id);
    o
}

#[track_caller]
fn assert_no_secret(report: &SendReport) {
    let text = format!("{report:?}");
    assert!(!text.contains(TOKEN), "the access token leaked: {text}");
}

fn accepted() -> Outcome {
    Outcome::Delivered { accepted: true, detail: Some("LinkedIn answered 201 for this conversion".into()) }
}

fn leads(n: i64) -> Vec<Claimed> {
    (1..=n).map(|i| claimed(i, lead(&format!("L-{i}")))).collect()
}

#[tokio::test]
async fn a_batch_is_accepted_per_element_and_arrives_intact() {
    let (sim, linkedin, _t) = setup().await;
    let batch = leads(2);
    assert_eq!(linkedin.preflight(&batch).await, SendReport::default());
    let report = linkedin.send(&batch, &[]).await;
    assert_no_secret(&report);
    assert_eq!(report.requests.len(), 1);
    let r = &report.requests[0];
    assert_eq!((r.endpoint, r.status, r.error.clone()), ("conversionEvents", Some(200), None));
    assert_eq!(outcomes(&report), vec![(1, accepted()), (2, accepted())]);
    for (r, c) in report.outcomes.iter().zip(&batch) {
        assert_eq!(r.request, Some(0));
        let expected = ConversionElement::new(&c.event, &c.route, false).element_sha256;
        assert_eq!(r.payload_sha256.as_deref(), Some(expected.as_str()));
    }

    let got = &sim.requests()[0];
    assert_eq!(got.authorization.as_deref(), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(got.linkedin_version.as_deref(), Some("202603"));
    assert_eq!(got.protocol_version.as_deref(), Some("2.0.0"));
    assert_eq!(got.method.as_deref(), Some("BATCH_CREATE"));
    assert_eq!(got.element_statuses, [201, 201]);
    let conversions = sim.received_conversions();
    assert_eq!(conversions.len(), 2);
    let first = &conversions[0];
    assert_eq!(first.conversion, URN);
    assert_eq!(first.conversion_happened_at, batch[0].event.occurred_at.timestamp_millis());
    assert_eq!(first.event_id.as_deref(), Some("lead:L-1:lead_qualified"));
    assert_eq!(first.value, Some(json!({"currencyCode": "EUR", "amount": "59.90"})));
    assert_eq!(
        first.user_ids[0],
        ("SHA256_EMAIL".into(), batch[0].event.identity.email.as_ref().unwrap().meta.as_str().into())
    );
    assert_eq!(first.user_ids[1], ("LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID".into(), LI_FAT_ID.into()));
    assert_eq!(first.user_info, None);
    sim.shutdown().await;
}

#[tokio::test]
async fn one_bad_element_does_not_sink_the_others() {
    let (sim, linkedin, _t) = setup().await;
    let mut batch = leads(10);
    // Two the simulator refuses on their values, each with its own status.
    batch[3].route = route("Purchase");
    batch[7].event.value = Some(-5.0);
    let report = linkedin.send(&batch, &[]).await;
    assert_no_secret(&report);
    assert_eq!(report.requests.len(), 1);
    let o = outcomes(&report);
    let delivered: Vec<i64> = o.iter().filter(|(_, o)| *o == accepted()).map(|(id, _)| *id).collect();
    assert_eq!(delivered, [1, 2, 3, 5, 6, 7, 9, 10]);
    for (id, field) in [(4, "/conversion"), (8, "/conversionValue/amount")] {
        match &o[id as usize - 1].1 {
            Outcome::Rejected { reason, messages } => {
                assert_eq!(reason, "platform_rejected");
                assert!(messages[0].starts_with("element HTTP 422, serviceErrorCode 100: "), "{messages:?}");
                assert!(messages[0].contains(field), "{messages:?}");
            }
            other => panic!("expected a rejection of {id}, got {other:?}"),
        }
    }
    assert_eq!(sim.conversion_count(), 8);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_whole_request_422_rejects_the_named_elements_and_resends_the_rest_at_once() {
    let (sim, linkedin, _t) = setup().await;
    let mut batch = leads(5);
    // A value without a currency breaks the schema: the whole request is refused.
    batch[1].event.currency = None;
    batch[3].event.currency = None;
    let report = linkedin.send(&batch, &[]).await;
    assert_eq!(report.requests.len(), 2);
    assert_eq!(report.requests[0].status, Some(422));
    assert_eq!(report.requests[1].status, Some(200));
    let o = outcomes(&report);
    for (id, outcome) in &o {
        match (id, outcome) {
            (2 | 4, Outcome::Rejected { reason, messages }) => {
                assert_eq!(reason, "platform_rejected");
                let index = if *id == 2 { 1 } else { 3 };
                assert_eq!(messages.len(), 1, "{messages:?}");
                assert!(
                    messages[0].contains(&format!("/elements/{index}/conversionValue/currencyCode")),
                    "{messages:?}"
                );
            }
            (1 | 3 | 5, o) => assert_eq!(*o, accepted()),
            other => panic!("unexpected {other:?}"),
        }
    }
    let from: Vec<(i64, Option<usize>)> = report.outcomes.iter().map(|r| (r.delivery_id, r.request)).collect();
    assert!(from.contains(&(2, Some(0))) && from.contains(&(1, Some(1))), "{from:?}");
    assert_eq!(sim.conversion_count(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_whole_request_error_naming_no_element_rejects_all() {
    let (sim, linkedin, _t) = setup().await;
    sim.fail_next(1, Fault::Status(422));
    let report = linkedin.send(&leads(2), &[]).await;
    assert_eq!(report.requests.len(), 1);
    for (_, o) in outcomes(&report) {
        assert_eq!(
            o,
            Outcome::Rejected {
                reason: "platform_rejected".into(),
                messages: vec!["HTTP 422 (serviceErrorCode 0): injected fault".into()]
            }
        );
    }
    sim.fail_next(1, Fault::Status(403));
    let report = linkedin.send(&leads(1), &[]).await;
    assert!(
        matches!(&report.outcomes[0].outcome, Outcome::Rejected { messages, .. } if messages[0].starts_with("HTTP 403")),
        "{:?}",
        report.outcomes
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_token_halts_the_destination_without_leaking_it() {
    let (sim, linkedin, _t) = setup().await;
    sim.set_token_expired(true);
    let report = linkedin.send(&leads(2), &[]).await;
    assert_no_secret(&report);
    assert_eq!(report.requests[0].status, Some(401));
    for (_, o) in outcomes(&report) {
        match o {
            Outcome::Halt { reason } => {
                assert!(reason.starts_with("LinkedIn refused the access token (HTTP 401"), "{reason}");
                assert!(reason.contains("expired"), "{reason}");
            }
            other => panic!("expected a halt, got {other:?}"),
        }
    }
    sim.set_token_expired(false);
    sim.set_access_token(Some("another-token"));
    let report = linkedin.send(&leads(1), &[]).await;
    assert_no_secret(&report);
    assert!(matches!(&report.outcomes[0].outcome, Outcome::Halt { .. }));
    assert_eq!(sim.conversion_count(), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_retired_version_halts_the_destination() {
    let (sim, linkedin, _t) = setup().await;
    sim.retire_versions_before("202607");
    let report = linkedin.send(&leads(1), &[]).await;
    assert_eq!(report.requests[0].status, Some(426));
    match &report.outcomes[0].outcome {
        Outcome::Halt { reason } => {
            assert!(reason.starts_with("the configured linkedin_version is not active (HTTP 426"), "{reason}");
            assert!(reason.contains("202603"), "{reason}");
        }
        other => panic!("expected a halt, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_retry_after() {
    let (sim, linkedin, _t) = setup().await;
    let batch = leads(1);

    sim.fail_next(1, Fault::TooManyRequests { retry_after_secs: 7 });
    let report = linkedin.send(&batch, &[]).await;
    assert_eq!(
        outcomes(&report),
        vec![(
            1,
            Outcome::retry(
                "HTTP 429 (serviceErrorCode 101): rate limited (injected fault)",
                Some(StdDuration::from_secs(7))
            )
        )]
    );

    sim.set_request_quota(Some(0));
    let report = linkedin.send(&batch, &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Retry { reason, after: RetryAfter::Backoff } => assert!(reason.contains("throttle limit"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(sim.throttled_count(), 1);
    sim.set_request_quota(None);

    sim.fail_next(1, Fault::Status(503));
    let report = linkedin.send(&batch, &[]).await;
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("HTTP 503 (serviceErrorCode 0): injected fault", None))]);
    assert_eq!(sim.conversion_count(), 0, "refused requests keep nothing");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_server_error_for_one_element_retries_only_that_one() {
    let (sim, linkedin, _t) = setup().await;
    sim.fail_next_elements(1, 500);
    let report = linkedin.send(&leads(3), &[]).await;
    let o = outcomes(&report);
    assert_eq!(o[0].1, Outcome::retry("element HTTP 500, serviceErrorCode 100: injected element fault", None));
    assert_eq!((o[1].1.clone(), o[2].1.clone()), (accepted(), accepted()));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lost_answer_is_retried_and_linkedin_keeps_one() {
    let (sim, linkedin, _t) = setup().await;
    let batch = leads(1);
    // Processed, but the answer comes after the client's timeout: the in-doubt case.
    sim.fail_next(1, Fault::Delay(StdDuration::from_secs(2)));
    let report = linkedin.send(&batch, &[]).await;
    assert_no_secret(&report);
    assert_eq!(outcomes(&report), vec![(1, Outcome::retry("timeout", None))]);
    assert!(report.requests[0].error.is_some());
    let again = linkedin.send(&batch, &[]).await;
    assert_eq!(outcomes(&again), vec![(1, accepted())]);
    assert_eq!(report.outcomes[0].payload_sha256, again.outcomes[0].payload_sha256);
    assert_eq!(sim.received_conversions().len(), 2);
    assert_eq!(sim.unique_conversions().len(), 1, "the same eventId counts once");

    sim.shutdown().await;
    let report = linkedin.send(&batch, &[]).await;
    assert_no_secret(&report);
    match &report.outcomes[0].outcome {
        Outcome::Retry { reason, .. } => assert!(reason.starts_with("network error"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn the_browser_id_makes_the_insight_tag_and_the_server_one_conversion() {
    let (sim, linkedin, _t) = setup().await;
    let mut c = claimed(1, lead("L-1"));
    c.route.browser_tracked = true;
    c.event.identity.browser_event_id = Some("li-evt-1".into());
    linkedin.send(&[c.clone()], &[]).await;
    // What the Insight Tag reported for the same conversion, as LinkedIn would see it.
    let mut tag = c.clone();
    tag.route.browser_tracked = false;
    tag.event.event_id = EventId::parse("li-evt-1").unwrap();
    linkedin.send(&[tag], &[]).await;
    assert_eq!(sim.received_conversions()[0].event_id.as_deref(), Some("li-evt-1"));
    assert_eq!(sim.received_conversions().len(), 2);
    assert_eq!(sim.unique_conversions().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn batches_respect_the_batch_size() {
    let sim = start().await.unwrap();
    let mut t = config(&sim.base_url);
    t.config.batch_size = 3;
    let linkedin = Linkedin::new(&t.config).unwrap();
    let sizes: Vec<usize> = linkedin.batches(leads(7)).iter().map(Vec::len).collect();
    assert_eq!(sizes, [3, 3, 1]);
    let ids: Vec<i64> = linkedin.batches(leads(7)).concat().iter().map(|c| c.delivery_id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6, 7]);
    assert!(linkedin.batches(Vec::new()).is_empty());
    // A send larger than the batch size is split too.
    let report = linkedin.send(&leads(7), &[]).await;
    assert_eq!(report.requests.len(), 3);
    assert_eq!(sim.conversion_count(), 7);
    assert_eq!(linkedin.concurrency(), 4);
    assert_eq!(linkedin.name(), "linkedin");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_malformed_token_or_version_is_refused_at_start_without_showing_it() {
    let mut t = config("http://127.0.0.1:1");
    t.config.linkedin_version = "2025-11".into();
    let e = Linkedin::new(&t.config).err().unwrap();
    assert!(format!("{e:#}").contains("destinations.linkedin.linkedin_version"), "{e:#}");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "bad\u{7f}{TOKEN}").unwrap();
    t.config.linkedin_version = "202603".into();
    t.config.access_token = Secret::try_from(format!("file:{}", file.path().display())).unwrap();
    let e = Linkedin::new(&t.config).err().unwrap();
    let text = format!("{e:#}");
    assert!(text.contains("destinations.linkedin.access_token"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
}

#[tokio::test]
async fn what_the_adapter_finds_valid_the_simulator_keeps_and_what_it_refuses_the_simulator_refuses() {
    let (sim, linkedin, _t) = setup().await;
    let rules = linkedin.rules();
    let mut no_value = lead("L-2");
    no_value.value = None;
    let mut cookie_only = lead("L-3");
    cookie_only.identity.email = None;
    cookie_only.identity.ip = None;
    let mut tiny = lead("L-4");
    tiny.value = Some(1e-9);
    let mut urn = claimed(5, lead("L-5"));
    urn.route = route(URN);
    let mut tracked = claimed(6, lead("L-6"));
    tracked.route.browser_tracked = true;
    tracked.event.identity.browser_event_id = Some("li-evt-6".into());
    let valid =
        vec![claimed(1, lead("L-1")), claimed(2, no_value), claimed(3, cookie_only), claimed(4, tiny), urn, tracked];
    for c in &valid {
        assert_eq!(rules.validate(&c.event, &c.route, c.strip_personal), Vec::<String>::new(), "{}", c.delivery_id);
    }
    let report = linkedin.send(&valid, &[]).await;
    assert!(outcomes(&report).iter().all(|(_, o)| *o == accepted()), "{:#?}", report.outcomes);

    let mut negative = lead("L-7");
    negative.value = Some(-1.0);
    let mut bad_rule = claimed(8, lead("L-8"));
    bad_rule.route = route("Purchase");
    let mut stripped = claimed(9, lead("L-9"));
    stripped.strip_personal = true;
    let invalid = vec![claimed(7, negative), bad_rule, stripped];
    for c in &invalid {
        assert!(!rules.validate(&c.event, &c.route, c.strip_personal).is_empty(), "{}", c.delivery_id);
    }
    let report = linkedin.send(&invalid, &[]).await;
    assert!(outcomes(&report).iter().all(|(_, o)| matches!(o, Outcome::Rejected { .. })), "{:#?}", report.outcomes);
    assert_eq!(sim.conversion_count(), 6);
    sim.shutdown().await;
}
