//! `surety destinations test` and validate mode against the simulator: `validateOnly` requests,
//! nothing ingested, and what a refused grant or an unreachable account says.

use serde_json::json;

use super::*;
use crate::core::Outcome;
use crate::delivery::Destination;
use crate::platforms::google_ads::sim::Endpoint;

#[tokio::test]
async fn validate_only_checks_a_batch_and_ingests_nothing() {
    let (sim, gads, _t) = setup().await;
    let batch = vec![claimed(1, purchase("1042"), ACTION), claimed(2, purchase("1043"), "555")];
    let report = gads.validate_only(&batch).await;
    assert_no_secret(&format!("{report:?}"), &sim);
    for (_, outcome) in outcomes(&report) {
        let Outcome::Delivered { detail: Some(d), .. } = &outcome else { panic!("{outcome:?}") };
        assert!(d.contains("validateOnly: Google found no error"), "{d}");
    }
    assert!(report.follow_ups.is_empty(), "nothing to follow up: nothing was ingested");
    let sent = sim.requests_to(Endpoint::Ingest);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body.as_ref().unwrap()["validateOnly"], json!(true));
    assert_eq!(sim.event_count(), 0);
}

#[tokio::test]
async fn the_check_asks_for_a_token_then_validates_each_routed_action() {
    let (sim, gads, t) = setup().await;
    let routes = [route(ACTION), route("555"), route(ACTION)];
    let checks = gads.check(&routes).await;
    assert_eq!(checks.len(), 3, "{checks:?}");
    assert!(checks.iter().all(|c| c.ok), "{checks:?}");
    assert!(checks[1].check.contains("1234567890") && checks[1].check.contains("555"), "{checks:?}");
    assert_eq!(sim.event_count(), 0);

    // The service account may not reach the account: the destination is refused.
    sim.only_accounts(&["9999999999"]);
    let checks = gads.check(&routes).await;
    assert!(checks[0].ok, "the token was still issued");
    assert!(!checks[1].ok && checks[1].detail.contains("PERMISSION_DENIED"), "{checks:?}");

    // A refused grant stops at the first check (a fresh adapter: no token cached).
    sim.refuse_tokens(Some("invalid_grant"));
    let fresh = crate::platforms::google_ads::GoogleAds::new(&t.config).unwrap();
    let checks = fresh.check(&routes).await;
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert!(!checks[0].ok && checks[0].detail.contains("invalid_grant"), "{checks:?}");
}
