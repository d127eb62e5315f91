//! OAuth: the JWT bearer grant against the simulator, token caching and renewal, refusals.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::*;
use crate::core::Outcome;
use crate::delivery::Destination;
use crate::platforms::google_ads::sim::Endpoint;
use crate::platforms::google_ads::{GoogleAds, ServiceAccount};

#[tokio::test]
async fn one_grant_serves_many_sends() {
    let (sim, gads, _t) = setup().await;
    for i in 0..3 {
        let report = gads.send(&[claimed(i, purchase(&i.to_string()), ACTION)], &[]).await;
        assert!(matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }), "{report:?}");
        assert_eq!(report.requests.len(), 1, "a successful grant is not recorded");
        assert_no_secret(&format!("{report:?}"), &sim);
    }
    assert_eq!(sim.token_grants(), 1);
    assert_eq!(sim.accepted_requests(), 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn concurrent_sends_share_one_grant() {
    let (sim, gads, _t) = setup().await;
    let gads = Arc::new(gads);
    let sends = (0..6).map(|i| {
        let gads = gads.clone();
        tokio::spawn(async move { gads.send(&[claimed(i, purchase(&i.to_string()), ACTION)], &[]).await })
    });
    for s in sends {
        assert!(matches!(s.await.unwrap().outcomes[0].outcome, Outcome::Delivered { .. }));
    }
    assert_eq!(sim.token_grants(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_token_is_renewed_before_it_expires() {
    let (sim, gads, _t) = setup().await;
    // 400 s tokens are renewed halfway (the 5-minute margin is more than half their life).
    sim.set_token_lifetime(400);
    let offset = Arc::new(AtomicI64::new(0));
    let clock_offset = offset.clone();
    let gads = gads.with_clock(Arc::new(move || Utc::now() + Duration::seconds(clock_offset.load(Ordering::Relaxed))));
    let batch = [claimed(1, purchase("1"), ACTION)];
    gads.send(&batch, &[]).await;
    offset.store(150, Ordering::Relaxed);
    gads.send(&batch, &[]).await;
    assert_eq!(sim.token_grants(), 1, "still fresh at 150 s");
    offset.store(250, Ordering::Relaxed);
    let report = gads.send(&batch, &[]).await;
    assert!(matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }));
    assert_eq!(sim.token_grants(), 2, "renewed at 250 s, before the 400 s expiry");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_grant_halts_without_leaking_anything() {
    let (sim, gads, _t) = setup().await;
    sim.refuse_tokens(Some("invalid_grant"));
    let report = gads.send(&[claimed(1, purchase("1"), ACTION), claimed(2, purchase("2"), ACTION)], &[]).await;
    assert_no_secret(&format!("{report:?}"), &sim);
    assert_eq!(report.requests.len(), 1);
    let r = &report.requests[0];
    assert_eq!((r.endpoint, r.status), ("token", Some(400)));
    assert!(r.response_excerpt.contains("invalid_grant"), "{}", r.response_excerpt);
    for res in &report.outcomes {
        match &res.outcome {
            Outcome::Halt { reason } => {
                assert!(reason.starts_with("Google refused the service account's token grant: "), "{reason}");
                assert!(reason.contains("invalid_grant"), "{reason}");
            }
            other => panic!("expected a halt, got {other:?}"),
        }
        assert_eq!(res.request, Some(0));
    }
    assert!(sim.requests_to(Endpoint::Ingest).is_empty(), "nothing sent without a token");

    sim.refuse_tokens(None);
    let report = gads.send(&[claimed(1, purchase("1"), ACTION)], &[]).await;
    assert!(matches!(report.outcomes[0].outcome, Outcome::Delivered { .. }), "recovers once the grant works");
    sim.shutdown().await;
}

#[tokio::test]
async fn an_assertion_for_another_audience_is_refused() {
    let (sim, gads, _t) = setup().await;
    sim.set_audience(Some("https://oauth2.googleapis.com/token".into()));
    let report = gads.send(&[claimed(1, purchase("1"), ACTION)], &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Halt { reason } => {
            assert!(reason.contains("audience"), "{reason}")
        }
        other => panic!("expected a halt, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_token_endpoint_is_retried_not_halted() {
    let sim = crate::platforms::google_ads::sim::start().await.unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = config(&sim.base_url, &format!("http://127.0.0.1:{port}/token"));
    let gads = GoogleAds::new(&t.config).unwrap();
    let report = gads.send(&[claimed(1, purchase("1"), ACTION)], &[]).await;
    match &report.outcomes[0].outcome {
        Outcome::Retry { reason, .. } => assert!(reason.starts_with("token endpoint: network error"), "{reason}"),
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(report.requests[0].endpoint, "token");
    sim.shutdown().await;
}

#[test]
fn key_files_are_checked_at_build_time() {
    assert!(ServiceAccount::from_json(TEST_SERVICE_ACCOUNT_JSON, crate::platforms::google_ads::config::SCOPE).is_ok());
    assert_eq!(
        ServiceAccount::from_json(TEST_SERVICE_ACCOUNT_JSON, crate::platforms::google_ads::config::SCOPE)
            .unwrap()
            .client_email(),
        crate::platforms::google_ads::sim::TEST_CLIENT_EMAIL
    );
    let mut key: Value = serde_json::from_str(TEST_SERVICE_ACCOUNT_JSON).unwrap();
    key["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
    let err = ServiceAccount::from_json(&key.to_string(), crate::platforms::google_ads::config::SCOPE)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(err, "has no usable RSA private_key (PEM, PKCS#8)");
    assert!(ServiceAccount::from_json("{}", crate::platforms::google_ads::config::SCOPE).is_err());

    let mut t = config("http://x", "http://x/token");
    t.config.service_account_key =
        crate::config::Secret::try_from("env:SURETY_TEST_NO_SUCH_VAR_GADS".to_owned()).unwrap();
    let err = format!("{:#}", GoogleAds::new(&t.config).err().unwrap());
    assert!(err.contains("service_account_key (env:SURETY_TEST_NO_SUCH_VAR_GADS)"), "{err}");
}

#[tokio::test]
async fn once_refused_the_rest_of_the_batch_is_not_tried() {
    let (sim, _gads, mut t) = setup().await;
    t.config.batch_size = 1;
    let gads = GoogleAds::new(&t.config).unwrap();
    sim.refuse_tokens(Some("invalid_grant"));
    let batch: Vec<Claimed> = (0..3).map(|i| claimed(i, purchase(&i.to_string()), ACTION)).collect();
    let report = gads.send(&batch, &[]).await;
    assert_eq!(report.requests.len(), 1, "one refused grant, not three");
    assert_eq!(report.outcomes.len(), 3);
    assert!(report.outcomes.iter().all(|r| matches!(&r.outcome, Outcome::Halt { .. })));
    sim.shutdown().await;
}
