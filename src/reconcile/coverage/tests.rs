use chrono::TimeZone;

use super::*;
use crate::core::{Consent, EventId, Identity, Kind, Subject};
use crate::store::LedgerDelivery;

fn entry(
    seq: i64,
    kind: &str,
    identity: Identity,
    consent: Consent,
    deliveries: &[(&str, DeliveryState, Option<&str>)],
) -> LedgerEntry {
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let subject = Subject { kind: "order".into(), id: format!("{seq}") };
    let kind = Kind::parse(kind).unwrap();
    let event = Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: at,
        received_at: at,
        subject,
        value: None,
        currency: None,
        items: vec![],
        identity,
        consent,
        attributes: BTreeMap::new(),
        joined: if seq % 2 == 0 { vec!["client_id".into()] } else { vec![] },
    };
    let deliveries = deliveries
        .iter()
        .map(|(d, s, r)| LedgerDelivery {
            destination: (*d).into(),
            dest_event: "purchase".into(),
            state: *s,
            reason: r.map(str::to_owned),
            created_at: at,
        })
        .collect();
    LedgerEntry { seq, event, deliveries }
}

fn query(by: GroupBy) -> CoverageQuery {
    CoverageQuery {
        since: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap(),
        until: Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        by,
    }
}

fn sample() -> Vec<LedgerEntry> {
    let with_click = Identity { client_id: Some("1.2".into()), gclid: Some("G".into()), ..Default::default() };
    let granted = Consent {
        analytics: Some(ConsentState::Granted),
        ad_user_data: Some(ConsentState::Denied),
        ..Default::default()
    };
    vec![
        entry(
            1,
            "order_paid",
            with_click,
            granted.clone(),
            &[("ga4", DeliveryState::Delivered, Some("sent")), ("gads", DeliveryState::Delivered, Some("accepted"))],
        ),
        entry(
            2,
            "order_paid",
            Identity::default(),
            Consent::default(),
            &[
                ("ga4", DeliveryState::Skipped, Some("no_identity")),
                ("gads", DeliveryState::Rejected, Some("platform_rejected")),
            ],
        ),
        entry(3, "refund_completed", Identity::default(), granted, &[("ga4", DeliveryState::Pending, None)]),
    ]
}

#[test]
fn by_kind_counts_fields_consent_and_each_destination() {
    let q = query(GroupBy::Kind);
    let mut t = CoverageTally::default();
    for e in sample() {
        t.add(&e, &q).unwrap();
    }
    let r = t.finish(&q);
    assert_eq!(r.events, 3);
    let paid = &r.rows[0];
    assert_eq!((paid.key.as_str(), paid.events, paid.joined), ("order_paid", 2, 1));
    assert_eq!(paid.fields.get("client_id"), Some(&1));
    assert_eq!(paid.fields.get("any_click_id"), Some(&1));
    assert_eq!(paid.fields.get("email"), None);
    assert_eq!(paid.consent.get("analytics"), Some(&1));
    assert_eq!(paid.consent.get("ad_user_data"), None, "denied is not granted");
    let ga4 = &paid.destinations["ga4"];
    assert_eq!((ga4.planned, ga4.sent, ga4.delivered, ga4.accepted), (2, 1, 1, 0));
    assert_eq!(ga4.skipped.get("no_identity"), Some(&1));
    let gads = &paid.destinations["gads"];
    assert_eq!((gads.planned, gads.sent, gads.delivered, gads.accepted, gads.rejected), (2, 2, 1, 1, 1));
    assert_eq!(r.rows[1].destinations["ga4"].pending, 1);
    assert!(r.render().contains("→ gads: planned 2, sent 2, delivered 1, accepted 1, rejected 1"));
}

#[test]
fn by_destination_counts_each_event_under_each_of_its_destinations() {
    let q = query(GroupBy::Destination);
    let mut t = CoverageTally::default();
    for e in sample() {
        t.add(&e, &q).unwrap();
    }
    let r = t.finish(&q);
    let keys: Vec<&str> = r.rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["ga4", "gads"]);
    assert_eq!(r.rows[0].events, 3);
    assert_eq!(r.rows[0].destinations.len(), 1, "only its own destination");
    assert_eq!(r.rows[1].events, 2);
}
