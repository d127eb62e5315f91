//! `surety destinations test` for LinkedIn: each routed conversion rule looked up with the same
//! headers, every refusal said as what it means; validate mode sends nothing.

use super::*;
use crate::core::Outcome;
use crate::delivery::Destination;
use crate::platforms::linkedin::sim::{start, RuleAccess};
use crate::platforms::linkedin::Linkedin;

#[tokio::test]
async fn each_routed_rule_is_looked_up_and_each_refusal_named() {
    let sim = start().await.unwrap();
    sim.set_access_token(Some(TOKEN));
    sim.set_conversion_rules(&[("1", RuleAccess::Enabled), ("2", RuleAccess::Disabled), ("3", RuleAccess::Forbidden)]);
    let t = config(&sim.base_url);
    let linkedin = Linkedin::new(&t.config).unwrap();
    let routes = [route("1"), route("2"), route("3"), route("4"), route("1")];
    let checks = linkedin.check(&routes).await;
    let got: Vec<(&str, bool)> = checks.iter().map(|c| (c.check.as_str(), c.ok)).collect();
    assert_eq!(
        got,
        [
            ("conversion rule 1", true),
            ("conversion rule 2", false),
            ("conversion rule 3", false),
            ("conversion rule 4", false)
        ]
    );
    assert!(checks[1].detail.contains("disabled"), "{checks:?}");
    assert!(checks[2].detail.contains("HTTP 403"), "{checks:?}");
    assert!(checks[3].detail.contains("no such conversion rule (HTTP 404)"), "{checks:?}");
    // The 200 proves the version header went along (the simulator answers 400 without it); a
    // lookup is no conversion request, and the token is never echoed.
    assert!(sim.requests().is_empty(), "lookups are not conversion requests");
    assert!(checks.iter().all(|c| !c.detail.contains(TOKEN)));

    sim.retire_versions_before("202701");
    let checks = linkedin.check(&[route("1")]).await;
    assert!(!checks[0].ok && checks[0].detail.contains("HTTP 426"), "{checks:?}");
    sim.set_access_token(Some("another"));
    let checks = linkedin.check(&[route("1")]).await;
    assert!(!checks[0].ok && checks[0].detail.contains("HTTP 401"), "{checks:?}");
    let none = linkedin.check(&[]).await;
    assert!(none[0].ok && none[0].detail.starts_with("not checked"), "{none:?}");
    assert_eq!(sim.conversion_count(), 0);
}

#[tokio::test]
async fn validate_mode_builds_and_checks_locally_and_sends_nothing() {
    let sim = start().await.unwrap();
    let t = config(&sim.base_url);
    let linkedin = Linkedin::new(&t.config).unwrap();
    let report = linkedin.validate_only(&[claimed(7, lead("9"))]).await;
    assert!(report.requests.is_empty());
    let Outcome::Delivered { detail: Some(d), .. } = &report.outcomes[0].outcome else { panic!("{report:?}") };
    assert!(d.contains("LinkedIn has no validation route"), "{d}");
    assert!(sim.requests().is_empty());
}
