//! Classification of Graph API errors, code family by code family.

use std::time::Duration;

use crate::core::RetryAfter;
use crate::platforms::meta::{classify, GraphError, RequestVerdict, SLOW_DOWN_FLOOR};

fn error(code: i64, subcode: Option<i64>, is_transient: Option<bool>) -> GraphError {
    GraphError {
        message: format!("message for {code}"),
        kind: "OAuthException".into(),
        code: Some(code),
        error_subcode: subcode,
        fbtrace_id: Some("Trace1".into()),
        is_transient,
        ..GraphError::default()
    }
}

fn retry_reason(v: &RequestVerdict) -> &str {
    match v {
        RequestVerdict::Retry { reason, .. } => reason,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn transient_codes_retry() {
    for (code, transient) in [(1, None), (2, None), (100, Some(true)), (12345, Some(true))] {
        let v = classify(&error(code, None, transient), Some(400), None);
        assert!(retry_reason(&v).starts_with("transient: Meta error"), "{code}: {v:?}");
    }
    let v = classify(&error(2, None, None), Some(503), Some(Duration::from_secs(3)));
    let after = RetryAfter::Told(Duration::from_secs(3));
    assert_eq!(v, RequestVerdict::Retry { reason: retry_reason(&v).to_owned(), after });
}

#[test]
fn rate_limits_retry_no_sooner_than_the_floor() {
    for (code, sub) in [(4, None), (17, None), (613, None), (100, Some(2446079)), (80000, Some(1487742))] {
        let v = classify(&error(code, sub, None), Some(400), None);
        assert!(retry_reason(&v).starts_with("slow down:"), "{code}: {v:?}");
        assert!(
            matches!(v, RequestVerdict::Retry { after: RetryAfter::SlowDown(d), .. } if d == SLOW_DOWN_FLOOR),
            "{v:?}"
        );
    }
    // A longer Retry-After wins over the floor.
    let v = classify(&error(17, None, None), Some(400), Some(Duration::from_secs(600)));
    assert!(matches!(v, RequestVerdict::Retry { after: RetryAfter::SlowDown(d), .. } if d == Duration::from_secs(600)));
}

#[test]
fn a_refused_token_halts() {
    for code in [190, 102, 104] {
        let v = classify(&error(code, Some(463), None), Some(401), None);
        let RequestVerdict::Halt { reason } = &v else { panic!("expected a halt, got {v:?}") };
        assert!(reason.starts_with(&format!("access token invalid or expired (code {code})")), "{reason}");
    }
    // is_transient does not turn a refused token into a plain retry.
    assert!(matches!(classify(&error(190, None, Some(true)), Some(401), None), RequestVerdict::Halt { .. }));
}

#[test]
fn permission_and_policy_reject_the_request_without_splitting() {
    for code in [10, 200, 250, 299, 368] {
        let v = classify(&error(code, None, Some(false)), Some(403), None);
        match v {
            RequestVerdict::Rejected { message, splittable: false } => {
                assert!(
                    message.starts_with(&format!("Meta error {code} (OAuthException): message for {code}")),
                    "{message}"
                )
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[test]
fn invalid_parameter_rejects_and_may_be_split() {
    let mut e = error(100, Some(2804019), Some(false));
    e.error_user_title = Some("Invalid event".into());
    e.error_user_msg = Some("data[3].user_data.em: must be hashed".into());
    match classify(&e, Some(400), None) {
        RequestVerdict::Rejected { message, splittable: true } => assert_eq!(
            message,
            "Meta error 100/2804019 (OAuthException): message for 100 — Invalid event: data[3].user_data.em: must be \
             hashed [fbtrace_id Trace1]"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_codes_follow_the_status() {
    assert!(matches!(
        classify(&error(9999, None, None), Some(400), None),
        RequestVerdict::Rejected { splittable: true, .. }
    ));
    assert!(matches!(
        classify(&error(9999, None, None), Some(404), None),
        RequestVerdict::Rejected { splittable: false, .. }
    ));
    assert!(retry_reason(&classify(&error(9999, None, None), Some(500), None)).starts_with("HTTP 500"));
    assert!(retry_reason(&classify(&error(9999, None, None), Some(429), None)).starts_with("HTTP 429"));
}
