use chrono::TimeZone;

use super::*;
use crate::core::{Consent, Currency, DeliveryState, EventId, Identity, Kind, Subject};
use crate::store::LedgerDelivery;

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn entry(seq: i64, occurred: DateTime<Utc>, received: DateTime<Utc>, value: f64, skipped: bool) -> LedgerEntry {
    let subject = Subject { kind: "order".into(), id: format!("o{seq}") };
    let kind = Kind::parse("order_paid").unwrap();
    let event = Event {
        event_id: EventId::derive(&subject, &kind),
        kind,
        source: "api".into(),
        occurred_at: occurred,
        received_at: received,
        subject,
        value: Some(value),
        currency: Some(Currency::parse("EUR").unwrap()),
        items: vec![],
        identity: Identity::default(),
        consent: Consent::default(),
        attributes: BTreeMap::new(),
        joined: vec![],
    };
    let deliveries = vec![LedgerDelivery {
        destination: "ga4".into(),
        dest_event: "purchase".into(),
        state: if skipped { DeliveryState::Skipped } else { DeliveryState::Delivered },
        reason: skipped.then(|| OUTSIDE_WINDOW.to_owned()),
        created_at: received,
    }];
    LedgerEntry { seq, event, deliveries }
}

fn query() -> LateQuery {
    LateQuery { since: at(1, 0), until: at(30, 0), changed_since: Some(at(25, 0)), kinds: vec![] }
}

#[test]
fn each_event_lands_in_its_day_and_bucket() {
    let q = query();
    let mut t = LateTally::default();
    let entries = [
        entry(1, at(20, 10), at(20, 10), 10.0, false), // on time
        entry(2, at(20, 23), at(21, 0) + Duration::minutes(30), 20.0, false), // < 1 h after the day
        entry(3, at(20, 12), at(21, 5), 30.0, false),  // < 24 h
        entry(4, at(20, 12), at(23, 12), 40.0, false), // < 72 h (2 d 12 h after the end)
        entry(5, at(20, 12), at(27, 0), 50.5, true),   // later, skipped outside_window; changed
        entry(6, at(21, 9), at(21, 9), 5.0, false),
        entry(7, at(30, 9), at(30, 9), 5.0, false), // outside the query window
    ];
    for e in &entries {
        t.add(e, &q).unwrap();
    }
    let r = t.finish(&q).unwrap();
    assert_eq!(r.days.len(), 2);
    let d = &r.days[0];
    assert_eq!(d.day, NaiveDate::from_ymd_opt(2026, 11, 20).unwrap());
    assert_eq!((d.events, d.on_time), (5, 1));
    assert_eq!(d.late, LateBuckets { under_1h: 1, under_24h: 1, under_72h: 1, later: 1 });
    assert_eq!(d.outside_window.get("ga4"), Some(&1));
    assert_eq!(d.value.get("EUR"), Some(&150.5));
    assert_eq!(d.changed, Some(DayChange { events: 1, value: BTreeMap::from([("EUR".to_owned(), 50.5)]) }));
    assert_eq!(r.days[1].changed, None);
    assert_eq!((r.events, r.late.total()), (6, 4));
    let text = r.render();
    assert!(text.contains("2026-11-20 gained 1 events and 50.50 EUR"), "{text}");
}

#[test]
fn a_kind_filter_counts_only_those_kinds() {
    let mut q = query();
    q.kinds = vec!["refund_completed".into()];
    let mut t = LateTally::default();
    t.add(&entry(1, at(20, 10), at(20, 10), 10.0, false), &q).unwrap();
    let r = t.finish(&q).unwrap();
    assert!(r.days.is_empty());
    assert_eq!(r.events, 0);
}
