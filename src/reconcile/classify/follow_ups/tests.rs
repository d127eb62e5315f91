//! Google Ads read back: each delivered conversion classed by what Google's processing status said.

use std::collections::{BTreeMap, HashSet};

use chrono::{Duration, TimeZone, Utc};

use crate::config::DestinationConfig;
use crate::core::{Consent, Currency, DeliveryState, Event, EventId, Identity, Kind, Subject};
use crate::platforms::google_ads::config::GoogleAdsConfig;
use crate::reconcile::classify::{Matcher, Scope, Settings};
use crate::reconcile::read::SourceRow;
use crate::store::{LedgerDelivery, LedgerEntry};

fn entry(seq: i64, state: DeliveryState, reason: &str) -> LedgerEntry {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let subject = Subject { kind: "order".into(), id: format!("o{seq}") };
    let kind = Kind::parse("order_paid").unwrap();
    let event = Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: at,
        received_at: at,
        subject,
        value: Some(10.0),
        currency: Some(Currency::parse("EUR").unwrap()),
        items: vec![],
        identity: Identity::default(),
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: vec![],
    };
    let delivery = LedgerDelivery {
        destination: "gads".into(),
        dest_event: "111".into(),
        state,
        reason: Some(reason.to_owned()),
        created_at: at,
    };
    LedgerEntry { seq, event, deliveries: vec![delivery] }
}

#[test]
fn each_follow_up_result_is_one_class() {
    let section: GoogleAdsConfig =
        toml::from_str("name = \"gads\"\ncustomer_id = \"123-456-7890\"\nservice_account_key = \"env:GADS_KEY\"\n")
            .unwrap();
    let since = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let scope = Scope {
        name: "gads".into(),
        platform: crate::platforms::find("google_ads").unwrap(),
        kinds: HashSet::from(["order_paid".to_owned()]),
        route_events: HashSet::from(["111".to_owned()]),
        retry_age: Duration::hours(1),
        config: DestinationConfig::new("google_ads", Box::new(section)),
    };
    let settings = Settings {
        since,
        until: since + Duration::days(1),
        tolerance: 0.01,
        now: since + Duration::days(2),
        kinds: None,
    };
    let mut m = Matcher::new(settings, vec![scope]);
    m.add_follow_ups("gads");
    for (seq, state, reason) in [
        (1, DeliveryState::Delivered, "accepted"),
        (2, DeliveryState::Delivered, "accepted"),
        (3, DeliveryState::Rejected, "processing_failed"),
        (4, DeliveryState::Delivered, "partially_accepted"),
        (5, DeliveryState::Delivered, "sent"),
        (6, DeliveryState::Delivered, "processing_unknown"),
        (7, DeliveryState::Dead, "HTTP 500"),
    ] {
        let e = entry(seq, state, reason);
        m.add_source(SourceRow {
            line: seq as u32 + 1,
            event_id: e.event.event_id.as_str().into(),
            kind: Some("order_paid".into()),
            occurred_at: e.event.occurred_at,
            value: Some(10.0),
            currency: Some("EUR".into()),
            source: None,
            taken: false,
        });
        m.ledger(e);
    }
    let report = m.finish();
    let d = &report.destinations["gads"];
    let classes: Vec<(&str, u64)> = d.classes.iter().map(|(c, n)| (c.as_str(), *n)).collect();
    assert_eq!(
        classes,
        [
            ("awaiting_confirmation", 1),
            ("dead", 1),
            ("matched", 2),
            ("missing_at_platform", 1),
            ("partially_accepted_at_platform", 1),
            ("unconfirmed_at_platform", 1),
        ]
    );
    assert_eq!((d.explained, d.unexplained, d.platform_reported), (2, 3, Some(2)));
    let unexplained: Vec<&str> = report.mismatches.iter().map(|m| m.class.as_str()).collect();
    assert!(unexplained.contains(&"missing_at_platform") && unexplained.contains(&"partially_accepted_at_platform"));
}
