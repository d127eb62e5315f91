//! A person's settlement on a real PostgreSQL: what may be settled and what it becomes, what is
//! recorded on the timeline, and that only a forced replay puts a settled delivery back in the
//! queue.

use std::collections::HashMap;

use super::*;
use crate::core::delivery::reason::SETTLED_BY_PERSON;
use crate::core::DeliveryState;
use crate::store::{DeliveryFilter, ReplaySelector, SettleOutcome, SettledAs, Settlement, Store};

fn settlement(delivery_id: i64, settled_as: SettledAs, note: Option<&str>) -> Settlement {
    Settlement { delivery_id, settled_as, by: "admin token #1".into(), note: note.map(str::to_owned) }
}

#[tokio::test]
async fn settles_what_needs_a_person_records_it_and_refuses_the_rest() {
    use DeliveryState::*;
    let store = testdb::fresh().await;
    let pool = store.pool();
    let mut by_state = HashMap::new();
    for (i, state) in DeliveryState::ALL.into_iter().enumerate() {
        let e = event(&format!("s{i}"), "order_paid", secs(60));
        insert_event(pool, &e).await;
        let id = insert_delivery(pool, &e, "ga4", None, state, None).await;
        sqlx::query("UPDATE deliveries SET reason = $2 WHERE id = $1")
            .bind(id)
            .bind(format!("was_{state}"))
            .execute(pool)
            .await
            .unwrap();
        by_state.insert(state, (id, e.event_id.as_str().to_owned()));
    }
    let id = |s: DeliveryState| by_state[&s].0;
    let now = t0() + secs(5);
    let needs_person = || async {
        let f = DeliveryFilter { needs_person: true, ..DeliveryFilter::default() };
        store.deliveries(f).await.unwrap().iter().map(|d| d.id).collect::<Vec<_>>()
    };
    assert_eq!(needs_person().await, vec![id(Rejected), id(Dead), id(InDoubt)]);

    for state in [Pending, Claimed, Sending, Delivered, Skipped] {
        let out = store.settle(settlement(id(state), SettledAs::Delivered, None), now).await.unwrap();
        assert!(matches!(&out, SettleOutcome::Refused { state: s, .. } if *s == state), "{state}: {out:?}");
        assert_eq!(row(pool, id(state)).await.0, state.as_str(), "unchanged");
    }
    assert_eq!(
        store.settle(settlement(999_999, SettledAs::Delivered, None), now).await.unwrap(),
        SettleOutcome::NotFound
    );

    let out = store.settle(settlement(id(InDoubt), SettledAs::Delivered, Some("seen in GA4")), now).await.unwrap();
    let SettleOutcome::Settled { destination, state, settlement: s } = out else { panic!("{out:?}") };
    assert_eq!((destination.as_str(), state), ("ga4", Delivered));
    assert_eq!((s.previous_state.as_str(), s.previous_reason.as_deref()), ("in_doubt", Some("was_in_doubt")));
    let out = store.settle(settlement(id(Dead), SettledAs::NotDelivered, None), now).await.unwrap();
    assert!(matches!(out, SettleOutcome::Settled { state: Skipped, .. }), "{out:?}");
    let out = store.settle(settlement(id(Rejected), SettledAs::NotDelivered, None), now).await.unwrap();
    assert!(matches!(out, SettleOutcome::Settled { state: Skipped, .. }), "{out:?}");
    let reason = Some(SETTLED_BY_PERSON.to_owned());
    assert_eq!(row(pool, id(InDoubt)).await, ("delivered".into(), reason.clone(), 0, None, None, false));
    assert_eq!(row(pool, id(Dead)).await, ("skipped".into(), reason.clone(), 0, None, None, false));
    assert!(needs_person().await.is_empty(), "nothing waits for a person any more");

    // Settled once: a second settlement is refused.
    let again = store.settle(settlement(id(InDoubt), SettledAs::NotDelivered, None), now).await.unwrap();
    assert!(matches!(again, SettleOutcome::Refused { state: Delivered, .. }), "{again:?}");

    // On the timeline: who, when, what was found, and why.
    let v = store.event(&by_state[&InDoubt].1).await.unwrap().unwrap();
    assert_eq!(v.settlements.len(), 1);
    let st = &v.settlements[0];
    assert_eq!((st.delivery_id, st.at, st.settled_as), (id(InDoubt), now, SettledAs::Delivered));
    assert_eq!((st.by.as_str(), st.note.as_deref()), ("admin token #1", Some("seen in GA4")));

    // Never claimed; a plain replay refuses them; a forced one puts them back in the queue.
    let settled = vec![id(Rejected), id(Dead), id(InDoubt)];
    assert!(store.claim("ga4", 10, LEASE, "w", now + secs(3600)).await.unwrap().is_empty());
    let sel = ReplaySelector { delivery_ids: settled.clone(), ..ReplaySelector::default() };
    let report = store.replay(sel.clone(), false, now).await.unwrap();
    assert!(report.replayed.is_empty());
    assert_eq!(report.refused.iter().map(|r| r.delivery_id).collect::<Vec<_>>(), settled);
    assert!(report.refused.iter().all(|r| r.reason.contains("settled by a person")), "{report:?}");
    let report = store.replay(sel, true, now).await.unwrap();
    assert_eq!(report.replayed, settled);
    assert!(row(pool, id(InDoubt)).await.5, "a settled-delivered one is replayed as forced");
    let claimed: Vec<i64> =
        store.claim("ga4", 10, LEASE, "w", now).await.unwrap().iter().map(|c| c.delivery_id).collect();
    assert_eq!(claimed, settled);
}
