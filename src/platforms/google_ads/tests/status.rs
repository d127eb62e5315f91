//! The processing-status check: `requestStatus:retrieve` read into typed results.

use serde_json::json;

use super::*;
use crate::core::Outcome;
use crate::delivery::Destination;
use crate::platforms::google_ads::sim::Processing;
use crate::platforms::google_ads::{parse_status, request_id, ProcessingState, ReasonCount, StatusError};
use crate::sim::Fault;

async fn accepted_request(gads: &super::super::GoogleAds, actions: &[&str]) -> String {
    let batch: Vec<Claimed> =
        actions.iter().enumerate().map(|(i, a)| claimed(i as i64, purchase(&i.to_string()), a)).collect();
    let report = gads.send(&batch, &[]).await;
    assert!(matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }), "{report:?}");
    request_id(report.requests.last().unwrap().response_excerpt.as_bytes()).unwrap()
}

#[test]
fn status_answers_are_read_with_int64_as_strings_or_numbers() {
    let body = json!({"requestStatusPerDestination": [
        {"destination": {"productDestinationId": "1"}, "requestStatus": "PARTIAL_SUCCESS",
         "eventsIngestionStatus": {"recordCount": "5"},
         "errorInfo": {"errorCounts": [
            {"recordCount": "2", "reason": "PROCESSING_ERROR_REASON_EVENT_TOO_OLD"},
            {"recordCount": 1, "reason": "PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID"}]}},
        {"destination": {"productDestinationId": "2"}, "requestStatus": "SOMETHING_NEW"}
    ]});
    let list = parse_status(body.to_string().as_bytes()).unwrap();
    assert_eq!(list[0].conversion_action.as_deref(), Some("1"));
    assert_eq!(list[0].state, ProcessingState::PartialSuccess);
    assert_eq!(list[0].record_count, Some(5));
    assert_eq!(
        list[0].errors,
        vec![
            ReasonCount { reason: "PROCESSING_ERROR_REASON_EVENT_TOO_OLD".into(), record_count: 2 },
            ReasonCount { reason: "PROCESSING_ERROR_REASON_DUPLICATE_TRANSACTION_ID".into(), record_count: 1 },
        ]
    );
    assert_eq!(
        list[0].to_string(),
        "1: PARTIAL_SUCCESS (5 records); errors: EVENT_TOO_OLD ×2, DUPLICATE_TRANSACTION_ID ×1"
    );
    assert_eq!(list[1].state, ProcessingState::Unknown);
    assert!(!list[1].state.is_final());
    assert_eq!(parse_status(b"{}").unwrap(), vec![]);
    assert!(parse_status(b"nope").is_err());
}

#[tokio::test]
async fn processing_then_success_per_conversion_action() {
    let (sim, gads, _t) = setup().await;
    assert_eq!(gads.status_poll_delay(), std::time::Duration::from_secs(1800));
    let id = accepted_request(&gads, &[ACTION, ACTION, "555"]).await;
    let first = gads.check_status(&id).await;
    assert_eq!(first.requests.len(), 1);
    assert_eq!(first.requests[0].endpoint, "requestStatus:retrieve");
    let list = first.result.clone().unwrap();
    assert!(list.iter().all(|d| d.state == ProcessingState::Processing));
    assert!(!first.is_final());
    let done = gads.check_status(&id).await;
    assert!(done.is_final());
    let list = done.result.clone().unwrap();
    let counts: Vec<(Option<&str>, ProcessingState, Option<i64>)> =
        list.iter().map(|d| (d.conversion_action.as_deref(), d.state, d.record_count)).collect();
    assert_eq!(
        counts,
        vec![(Some(ACTION), ProcessingState::Success, Some(2)), (Some("555"), ProcessingState::Success, Some(1))]
    );
    assert_eq!(done.summary(), format!("{ACTION}: SUCCESS (2 records) | 555: SUCCESS (1 records)"));
    assert_no_secret(&format!("{first:?}{done:?}"), &sim);
    sim.shutdown().await;
}

#[tokio::test]
async fn partial_success_and_failure_carry_reasons_and_counts() {
    let (sim, gads, _t) = setup().await;
    sim.set_processing_polls(0);
    sim.set_processing(Processing::PartialSuccess(vec![
        ("EVENT_TOO_OLD".into(), 2),
        ("DUPLICATE_TRANSACTION_ID".into(), 1),
    ]));
    let id = accepted_request(&gads, &[ACTION]).await;
    let check = gads.check_status(&id).await;
    let d = &check.result.as_ref().unwrap()[0];
    assert_eq!(d.state, ProcessingState::PartialSuccess);
    let reasons: Vec<(&str, i64)> = d.errors.iter().map(|r| (r.short(), r.record_count)).collect();
    assert_eq!(reasons, vec![("EVENT_TOO_OLD", 2), ("DUPLICATE_TRANSACTION_ID", 1)]);

    sim.set_processing(Processing::Failed(vec![("CLICK_NOT_FOUND".into(), 1)]));
    let id = accepted_request(&gads, &[ACTION]).await;
    let check = gads.check_status(&id).await;
    assert!(check.is_final());
    assert_eq!(check.result.unwrap()[0].state, ProcessingState::Failed);
    sim.shutdown().await;
}

#[tokio::test]
async fn status_errors_are_typed() {
    let (sim, gads, _t) = setup().await;
    let check = gads.check_status("no-such-request").await;
    match &check.result {
        Err(StatusError::Refused(m)) => assert!(m.contains("INVALID_REQUEST_ID"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let id = accepted_request(&gads, &[ACTION]).await;
    sim.fail_next(1, Fault::Status(503));
    assert!(matches!(gads.check_status(&id).await.result, Err(StatusError::Retry { .. })));
    sim.revoke_tokens();
    let check = gads.check_status(&id).await;
    assert!(check.result.is_ok(), "a 401 renews the token once: {check:?}");
    assert_eq!(check.requests.iter().map(|r| r.status).collect::<Vec<_>>(), vec![Some(401), Some(200)]);
    sim.refuse_tokens(Some("invalid_grant"));
    sim.revoke_tokens();
    let check = gads.check_status(&id).await;
    match &check.result {
        Err(e @ StatusError::Halt(m)) => {
            assert!(m.starts_with("Google refused the service account's token grant"), "{m}");
            assert!(e.to_string().starts_with("halt: "), "{e}")
        }
        other => panic!("expected a halt, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn sends_name_their_follow_ups_and_the_worker_hook_reads_them() {
    use crate::core::FollowUp;
    let (sim, gads, _t) = setup().await;
    assert_eq!(gads.follow_up_after(), Some(std::time::Duration::from_secs(1800)));
    let mut batch: Vec<Claimed> = (0..3).map(|i| claimed(i, purchase(&i.to_string()), ACTION)).collect();
    batch[1].event.currency = None; // refused, then the rest resent
    let report = gads.send(&batch, &[]).await;
    let id = request_id(report.requests[1].response_excerpt.as_bytes()).unwrap();
    assert_eq!(report.follow_ups, vec![(1, id.clone())], "only the accepted request is followed up");

    assert_eq!(gads.follow_up(&id).await, FollowUp::NotYet);
    assert_eq!(gads.follow_up(&id).await, FollowUp::Accepted);

    sim.set_processing_polls(0);
    sim.set_processing(Processing::PartialSuccess(vec![("EVENT_TOO_OLD".into(), 1)]));
    let id = accepted_request(&gads, &[ACTION, "555"]).await;
    match gads.follow_up(&id).await {
        FollowUp::Partial { messages } => {
            assert_eq!(messages.len(), 2, "one per conversion action: {messages:?}");
            assert!(messages[0].contains("EVENT_TOO_OLD ×1"), "{messages:?}");
        }
        other => panic!("expected a partial acceptance, got {other:?}"),
    }
    sim.set_processing(Processing::Failed(vec![("DENIED_CONSENT".into(), 1)]));
    let id = accepted_request(&gads, &[ACTION]).await;
    assert!(
        matches!(gads.follow_up(&id).await, FollowUp::Failed { messages } if messages[0].contains("DENIED_CONSENT"))
    );
    // A request id Google does not know will never be answered: the follow-up ends there.
    assert!(matches!(gads.follow_up("unknown").await, FollowUp::Unconfirmed(e) if e.contains("INVALID_REQUEST_ID")));
    sim.fail_next(1, Fault::Status(503));
    assert!(matches!(gads.follow_up(&id).await, FollowUp::Error(e) if e.contains("503")), "a 503 is asked again");
    sim.shutdown().await;
}
