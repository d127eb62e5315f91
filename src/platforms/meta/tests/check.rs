//! `surety destinations test` and validate mode for Meta: test events with the configured (or a
//! made-up) `test_event_code`, never counted as conversions.

use super::*;
use crate::core::Outcome;
use crate::delivery::Destination;
use crate::platforms::meta::sim::start;
use crate::platforms::meta::Meta;

#[tokio::test]
async fn the_check_sends_one_test_event_and_says_which_code() {
    let sim = start().await.unwrap();
    let mut t = config(&sim.base_url);
    let made_up = Meta::new(&t.config).unwrap().check(&[]).await;
    assert!(made_up.iter().all(|c| c.ok), "{made_up:?}");
    assert!(made_up[1].detail.contains("made-up test_event_code SURETY"), "{made_up:?}");
    t.config.test_event_code = Some("TEST4242".into());
    let meta = Meta::new(&t.config).unwrap();
    let checks = meta.check(&[]).await;
    assert!(checks[1].detail.contains("with test_event_code TEST4242"), "{checks:?}");
    assert!(checks.iter().all(|c| !c.detail.contains(TOKEN)));
    assert_eq!((sim.event_count(), sim.test_event_count()), (0, 2));
    assert_eq!(sim.received_events()[1].test_event_code.as_deref(), Some("TEST4242"));

    sim.expire_token();
    let checks = meta.check(&[]).await;
    assert_eq!((checks[0].check.as_str(), checks[0].ok), ("access token", false));
    assert!(checks[0].detail.contains("190"), "{checks:?}");
}

#[tokio::test]
async fn validate_mode_sends_the_batch_as_test_events() {
    let sim = start().await.unwrap();
    let t = config(&sim.base_url);
    let meta = Meta::new(&t.config).unwrap();
    let report = meta.validate_only(&[claimed(1, purchase("1042"), "Purchase")]).await;
    let Outcome::Delivered { detail: Some(d), .. } = &report.outcomes[0].outcome else { panic!("{report:?}") };
    assert!(d.starts_with("test event with the made-up test_event_code"), "{d}");
    assert_eq!((sim.event_count(), sim.test_event_count()), (0, 1));
    assert!(sim.unique_events().is_empty());
}
