//! Reading answers the simulator does not give: odd bodies, the newer error shape, other statuses.

use std::time::Duration as StdDuration;

use serde_json::json;

use super::*;
use crate::core::Outcome;
use crate::core::RequestRecord;
use crate::delivery::http::{excerpt, Exchange};
use crate::platforms::linkedin::answer::{read, ElementVerdict};

fn exchange(status: Option<u16>, body: &str) -> Exchange {
    Exchange {
        record: RequestRecord {
            endpoint: "conversionEvents",
            sent_at: Utc::now(),
            duration: StdDuration::ZERO,
            status,
            error: None,
            response_excerpt: excerpt(body.as_bytes()),
            body_sha256: String::new(),
            body: None,
        },
        body: body.as_bytes().to_vec(),
        retry_after: None,
        timed_out: false,
    }
}

fn outcome(v: &ElementVerdict) -> &Outcome {
    match v {
        ElementVerdict::Final(o) => o,
        ElementVerdict::Innocent => panic!("expected a final verdict"),
    }
}

#[test]
fn a_2xx_without_per_element_statuses_is_sent_not_accepted() {
    for body in ["", "not json", "{}"] {
        let v = read(&exchange(Some(200), body), 2);
        assert_eq!(v.len(), 2);
        assert!(matches!(outcome(&v[0]), Outcome::Delivered { accepted: false, .. }), "{body}: {v:?}");
    }
}

#[test]
fn elements_missing_from_the_answer_are_retried() {
    let v = read(&exchange(Some(200), r#"{"elements": [{"status": 201}]}"#), 3);
    assert!(matches!(outcome(&v[0]), Outcome::Delivered { accepted: true, .. }));
    for missing in &v[1..] {
        assert!(matches!(outcome(missing), Outcome::Retry { reason, .. } if reason.contains("no status")));
    }
    // The flat per-element shape is read too.
    let v = read(&exchange(Some(200), r#"{"elements": [{"status": 400, "message": "bad rule"}]}"#), 1);
    assert_eq!(
        *outcome(&v[0]),
        Outcome::Rejected { reason: "platform_rejected".into(), messages: vec!["element HTTP 400: bad rule".into()] }
    );
}

#[test]
fn an_answer_that_broke_off_is_retried() {
    let mut ex = exchange(Some(200), r#"{"elements": [{"sta"#);
    ex.record.error = Some("error decoding response body".into());
    assert!(matches!(outcome(&read(&ex, 1)[0]), Outcome::Retry { .. }));
}

#[test]
fn the_newer_error_shape_names_elements_by_field_path() {
    let body = json!({
        "status": 422,
        "message": "Multiple errors occurred during the input validation.",
        "errorDetails": {"inputErrors": [
            {"description": "Invalid value", "input": {"inputPath": {"fieldPath": "/elements/1/eventId"}}, "code": "INVALID_VALUE"}
        ]}
    });
    let v = read(&exchange(Some(422), &body.to_string()), 3);
    assert_eq!(v[0], ElementVerdict::Innocent);
    assert_eq!(v[2], ElementVerdict::Innocent);
    assert_eq!(
        *outcome(&v[1]),
        Outcome::Rejected {
            reason: "platform_rejected".into(),
            messages: vec!["HTTP 422: /elements/1/eventId :: Invalid value".into()]
        }
    );
    // An index beyond the request names nobody: all are rejected with the whole message.
    let v = read(&exchange(Some(400), r#"{"message": "ERROR :: /elements/9/x :: bad", "status": 400}"#), 2);
    assert!(v.iter().all(|v| matches!(outcome(v), Outcome::Rejected { .. })));
}

#[test]
fn other_statuses() {
    let v = read(&exchange(Some(413), "<html>too large</html>"), 1);
    assert!(matches!(outcome(&v[0]), Outcome::Retry { reason, .. } if reason.ends_with("lower batch_size")), "{v:?}");
    let v = read(&exchange(Some(404), "<html>no such page</html>"), 1);
    assert_eq!(
        *outcome(&v[0]),
        Outcome::Rejected {
            reason: "platform_rejected".into(),
            messages: vec!["HTTP 404: <html>no such page</html>".into()]
        }
    );
    // A 5xx page that is not LinkedIn's JSON keeps the short reason.
    let v = read(&exchange(Some(502), "<html>bad gateway</html>"), 1);
    assert_eq!(*outcome(&v[0]), Outcome::retry("HTTP 502", None));
}
