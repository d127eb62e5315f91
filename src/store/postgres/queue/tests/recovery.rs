//! Taking back expired leases and replaying ended deliveries, on a real PostgreSQL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::*;
use crate::core::plan::{ConsentPolicy, ConsentPurpose, OnPersonalDataDenied, Planner, Rules};
use crate::core::{DeliveryState, Event, Route};
use crate::store::{Recovered, ReplaySelector, Store};

/// Rules that dedupe a resent purchase (as GA4 does with a transaction id), nothing else.
struct DedupesPurchases(ConsentPolicy);

impl Rules for DedupesPurchases {
    fn window(&self) -> chrono::Duration {
        chrono::Duration::hours(72)
    }
    fn identity_ok(&self, _event: &Event) -> bool {
        true
    }
    fn validate(&self, _event: &Event, _route: &Route, _strip_personal: bool) -> Vec<String> {
        vec![]
    }
    fn dedupes_with_browser(&self) -> bool {
        false
    }
    fn dedupes_resend(&self, _event: &Event, route: &Route) -> bool {
        route.event == "purchase"
    }
    fn consent_policy(&self) -> &ConsentPolicy {
        &self.0
    }
}

pub(super) fn planner() -> Planner {
    let policy = ConsentPolicy {
        purpose: ConsentPurpose::Analytics,
        on_personal_data_denied: OnPersonalDataDenied::Strip,
        assume_granted: false,
    };
    let rules: BTreeMap<String, Arc<dyn Rules>> =
        [("ga4".to_owned(), Arc::new(DedupesPurchases(policy)) as Arc<dyn Rules>)].into_iter().collect();
    Planner::new(BTreeMap::new(), rules)
}

#[tokio::test]
async fn recover_takes_back_only_expired_leases_unless_all() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let planner = Arc::new(planner());
    let expired_claim = pending(pool, &event("1", "order_paid", secs(60)), "ga4", "purchase").await;
    let expired_purchase = pending(pool, &event("2", "order_paid", secs(60)), "ga4", "purchase").await;
    let expired_refund = pending(pool, &event("3", "order_refunded", secs(60)), "ga4", "refund").await;
    store.claim("ga4", 10, LEASE, "dead", t0()).await.unwrap();
    store.mark_sending(&[expired_purchase, expired_refund], "dead", t0()).await.unwrap();
    let live_claim = pending(pool, &event("4", "order_paid", secs(60)), "ga4", "purchase").await;
    let live_sending = pending(pool, &event("5", "order_paid", secs(60)), "ga4", "purchase").await;
    let now = t0() + secs(40);
    assert_eq!(store.claim("ga4", 10, LEASE, "alive", now - secs(5)).await.unwrap().len(), 2);
    store.mark_sending(&[live_sending], "alive", now).await.unwrap();

    let recovered = store.recover(planner.clone(), false, now).await.unwrap();
    assert_eq!(recovered, Recovered { released: 1, resent: 1, in_doubt: 1 });
    assert_eq!(row(pool, expired_claim).await, ("pending".into(), None, 0, None, Some(to_us(now)), false));
    assert_eq!(row(pool, expired_purchase).await, ("pending".into(), None, 1, None, Some(to_us(now)), false));
    assert_eq!(attempts(pool, expired_purchase).await, vec![(1, "in_doubt_resend".into(), None, false)]);
    assert_eq!(
        row(pool, expired_refund).await,
        ("in_doubt".into(), Some("crashed_while_sending".into()), 1, None, None, false)
    );
    assert_eq!(attempts(pool, expired_refund).await, vec![(1, "in_doubt".into(), None, false)]);
    assert_eq!(row(pool, live_claim).await.3.as_deref(), Some("alive"), "a live lease is left alone");
    assert_eq!(row(pool, live_sending).await.0, "sending");

    let recovered = store.recover(planner.clone(), false, now).await.unwrap();
    assert_eq!(recovered, Recovered::default(), "nothing left to take back");
    let recovered = store.recover(planner, true, now).await.unwrap();
    assert_eq!(recovered, Recovered { released: 1, resent: 1, in_doubt: 0 }, "all: every lease");
    assert_eq!(row(pool, live_claim).await.0, "pending");
    assert_eq!(row(pool, live_sending).await.0, "pending");
}

#[tokio::test]
async fn recover_leaves_in_doubt_a_destination_without_rules() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let id = pending(pool, &event("1", "order_paid", secs(60)), "unknown", "purchase").await;
    store.claim("unknown", 1, LEASE, "w", t0()).await.unwrap();
    store.mark_sending(&[id], "w", t0()).await.unwrap();
    let recovered = store.recover(Arc::new(planner()), true, t0()).await.unwrap();
    assert_eq!(recovered, Recovered { in_doubt: 1, ..Recovered::default() });
    assert_eq!(row(pool, id).await.0, "in_doubt");
}

#[tokio::test]
async fn replay_refuses_live_delivered_and_skipped_unless_forced() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let mut by_state = HashMap::new();
    for (i, state) in DeliveryState::ALL.into_iter().enumerate() {
        let e = event(&i.to_string(), "order_paid", secs(60));
        insert_event(pool, &e).await;
        let id = insert_delivery(pool, &e, "ga4", None, state, None).await;
        sqlx::query("UPDATE deliveries SET reason = $2, attempts = 3, messages = '[\"m\"]' WHERE id = $1")
            .bind(id)
            .bind(format!("was_{state}"))
            .execute(pool)
            .await
            .unwrap();
        by_state.insert(state, id);
    }
    let id = |s| by_state[&s];
    let now = t0() + secs(5);

    let dead_only = ReplaySelector { state: Some(DeliveryState::Dead), ..ReplaySelector::default() };
    assert_eq!(store.replay(dead_only, false, now).await.unwrap().replayed, vec![id(DeliveryState::Dead)]);

    let others = ReplaySelector { destination: Some("ga4".into()), ..ReplaySelector::default() };
    let report = store.replay(others.clone(), false, now).await.unwrap();
    assert_eq!(report.replayed, vec![id(DeliveryState::Rejected), id(DeliveryState::InDoubt)]);
    let refused: Vec<(i64, DeliveryState)> = report.refused.iter().map(|r| (r.delivery_id, r.state)).collect();
    use DeliveryState::*;
    let expected_refused = [Pending, Claimed, Sending, Delivered, Skipped, Dead];
    assert_eq!(refused, expected_refused.map(|s| (id(s), if s == Dead { Pending } else { s })).to_vec());
    assert!(report.refused[3].reason.contains("force"), "{:?}", report.refused[3]);
    assert_eq!(row(pool, id(InDoubt)).await, ("pending".into(), None, 0, None, Some(to_us(now)), false));
    let created: i64 = sqlx::query_scalar("SELECT created_at FROM deliveries WHERE id = $1")
        .bind(id(InDoubt))
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(created, to_us(now), "the age limit counts from the replay");

    let one = ReplaySelector { delivery_ids: vec![id(Delivered), id(Skipped), id(Claimed)], ..Default::default() };
    let report = store.replay(one, true, now).await.unwrap();
    assert_eq!(report.replayed, vec![id(Delivered), id(Skipped)]);
    assert_eq!(report.refused.len(), 1, "forced or not, a live delivery is refused");
    assert!(row(pool, id(Delivered)).await.5, "a forced replay of a delivered delivery is marked forced");
    assert!(!row(pool, id(Skipped)).await.5);

    let replays: Vec<(i64, String, Option<String>, bool)> =
        sqlx::query_as("SELECT delivery_id, previous_state, previous_reason, forced FROM replays ORDER BY id")
            .fetch_all(pool)
            .await
            .unwrap();
    let summary: Vec<(i64, &str, Option<&str>, bool)> =
        replays.iter().map(|r| (r.0, r.1.as_str(), r.2.as_deref(), r.3)).collect();
    assert_eq!(
        summary,
        vec![
            (id(Dead), "dead", Some("was_dead"), false),
            (id(Rejected), "rejected", Some("was_rejected"), false),
            (id(InDoubt), "in_doubt", Some("was_in_doubt"), false),
            (id(Delivered), "delivered", Some("was_delivered"), true),
            (id(Skipped), "skipped", Some("was_skipped"), true),
        ]
    );
    let by_event = ReplaySelector { event_id: Some("order:nope:order_paid".into()), ..ReplaySelector::default() };
    assert_eq!(store.replay(by_event, true, now).await.unwrap(), Default::default());
}
