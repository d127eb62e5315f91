//! Request bodies and attempt numbers across replays on a real PostgreSQL: the body each request
//! carried is on the event's timeline until `prune_request_bodies` drops it (the hash stays), and
//! a replay's attempts go on counting from the attempts before it.

use super::*;
use crate::store::ReplaySelector;

#[tokio::test]
async fn bodies_are_kept_until_pruned_and_attempts_count_on_across_a_replay() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let e = event("b1", "order_paid", secs(60));
    let id = pending(pool, &e, "ga4", "purchase").await;
    assert_eq!(ids(&store.claim("ga4", 10, LEASE, "w", t0()).await.unwrap()), vec![id]);
    let rec = |at| BatchRecord {
        destination: "ga4".into(),
        owner: "w".into(),
        requests: vec![request(at)],
        updates: vec![update(id, DeliveryState::Delivered, AttemptOutcome::Delivered)],
        follow_ups: vec![],
    };
    store.record(rec(t0()), t0() + secs(1)).await.unwrap();
    let view = store.event(e.event_id.as_str()).await.unwrap().unwrap();
    assert_eq!(view.attempts[0].request_body.as_deref(), Some("{\"events\":[]}"));

    // A forced replay starts a fresh retry budget; the attempt log goes on at 2.
    let sel = ReplaySelector { delivery_ids: vec![id], ..ReplaySelector::default() };
    assert_eq!(store.replay(sel, true, t0() + secs(2)).await.unwrap().replayed, vec![id]);
    assert_eq!(row(pool, id).await.2, 0, "the retry budget starts again");
    store.claim("ga4", 10, LEASE, "w", t0() + secs(3)).await.unwrap();
    store.record(rec(t0() + secs(3)), t0() + secs(4)).await.unwrap();
    let numbers: Vec<i32> = attempts(pool, id).await.into_iter().map(|a| a.0).collect();
    assert_eq!(numbers, vec![1, 2]);

    assert_eq!(store.prune_request_bodies(t0(), 10).await.unwrap(), 0, "sent at t0: not before it");
    assert_eq!(store.prune_request_bodies(t0() + secs(3), 10).await.unwrap(), 1, "the older body");
    assert_eq!(store.prune_request_bodies(t0() + secs(60), 10).await.unwrap(), 1);
    let view = store.event(e.event_id.as_str()).await.unwrap().unwrap();
    assert!(view.attempts.iter().all(|a| a.request_body.is_none()));
    assert!(view.attempts.iter().all(|a| a.request_sha256.as_deref() == Some(&"ab".repeat(32))), "hashes stay");
}
