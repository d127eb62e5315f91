//! The whole tour, as `surety demo --exit` plays it: it must go as described at all four
//! destinations, and its totals must add up and match what each simulator received. The numbers
//! are the story's, per destination, so this test names the platforms (the demo itself does not).

use super::setup::destinations;
use super::{Demo, DemoArgs};
use crate::platforms::google_ads::sim::GoogleAdsSim;
use crate::platforms::google_ads::PURCHASE_ACTION;

const GA4: &str = "ga4-web";
const META: &str = "meta";
const GOOGLE_ADS: &str = "google-ads";
const LINKEDIN: &str = "linkedin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tour_goes_as_described_at_all_four_destinations() {
    let args = DemoArgs { exit: true, listen: "127.0.0.1:0".parse().unwrap(), db: None };
    let demo = Demo::start(&args).await.unwrap();
    // The configuration the hints name for a second shell is the demo's own, on its ledger.
    let written = std::fs::read_to_string(&demo.config_file).unwrap();
    let written = crate::config::Config::from_toml(&written).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.sqlite_path().map(std::path::PathBuf::from), Some(demo.db.clone()));
    let summary = demo.tour().await;
    let lane = demo.sims.lane(GOOGLE_ADS).expect("a Google Ads lane");
    let google = lane.sim.as_any().downcast_ref::<GoogleAdsSim>().expect("the Google Ads simulator").state().clone();
    let ga4 = demo.sims.lane(GA4).expect("a GA4 lane");
    assert_eq!(demo.sims.outage().unwrap().name, GA4, "the outage is GA4's");
    let ga4_faults = ga4.sim.faulted();
    demo.stop().await.unwrap();
    let summary = summary.unwrap();
    assert!(summary.mismatches.is_empty(), "the tour differs from its story: {:#?}", summary.mismatches);

    let names: Vec<&str> = summary.by_destination.keys().map(String::as_str).collect();
    let mut expected_names = destinations();
    expected_names.sort_unstable();
    assert_eq!(names, expected_names, "one destination per simulator");

    // (planned, delivered, skipped) per destination, from the story: GA4 skips the declined
    // consent, the 80-hour-old order and the phone order; the ad platforms only the declined
    // consent. Refunds and chargebacks go to GA4 and Google Ads only, purchases and the lead to all.
    for (dest, planned, delivered, skipped) in
        [(GA4, 11, 8, 3), (META, 9, 8, 1), (GOOGLE_ADS, 11, 10, 1), (LINKEDIN, 9, 8, 1)]
    {
        let t = &summary.by_destination[dest];
        assert_eq!(
            (t.planned, t.count("delivered"), t.count("skipped")),
            (planned, delivered, skipped),
            "{dest}: {t:?}"
        );
        let ended: u64 = ["delivered", "rejected", "skipped", "dead", "in_doubt"].iter().map(|s| t.count(s)).sum();
        assert_eq!(ended, t.planned, "{dest}: every planned delivery ended: {t:?}");
        assert_eq!(t.received, Some(t.count("delivered")), "{dest}: its simulator got one event per delivery");
    }
    let t = &summary.by_destination[GA4];
    for reason in ["skipped:consent_denied", "skipped:outside_window", "skipped:no_identity"] {
        assert_eq!(t.reasons.get(reason), Some(&1), "{reason}: {t:?}");
    }
    assert!(ga4_faults > 0, "the GA4 outage happened");
    let t = &summary.by_destination[GOOGLE_ADS];
    assert_eq!(t.reasons.get("delivered:accepted"), Some(&10), "Google confirmed every request: {t:?}");

    // The refund and the chargeback retracted their purchases' conversions; the others stand.
    for (order, value) in [("1042", 0.0), ("1044", 0.0), ("1043", 129.0)] {
        let c = google.conversion(PURCHASE_ACTION, order).unwrap_or_else(|| panic!("conversion {order}"));
        assert_eq!(c.value, Some(value), "order {order}: {c:?}");
    }
}
