//! A recording that names one delivery more than once: its updates apply one after the other,
//! as if each were recorded in turn.

use super::*;

#[tokio::test]
async fn a_delivery_named_twice_in_a_recording_is_updated_in_turn() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let one = pending(pool, &event("1", "order_paid", secs(60)), "ga4", "purchase").await;
    let two = pending(pool, &event("2", "order_paid", secs(60)), "ga4", "purchase").await;
    store.claim("ga4", 10, LEASE, "w", t0()).await.unwrap();
    let again = t0() + secs(60);
    let rec = BatchRecord {
        destination: "ga4".into(),
        owner: "w".into(),
        requests: vec![request(t0()), request(t0())],
        updates: vec![
            retry(one, again),
            DeliveryUpdate { request: Some(1), ..update(two, DeliveryState::Delivered, AttemptOutcome::Delivered) },
            // The first update gave the lease back: this one is logged, and changes nothing.
            update(one, DeliveryState::Delivered, AttemptOutcome::Delivered),
        ],
        follow_ups: vec![(1, "jobs/1".into(), again)],
    };
    store.record(rec, t0() + secs(1)).await.unwrap();
    let requests: Vec<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, platform_request_id FROM requests ORDER BY id").fetch_all(pool).await.unwrap();
    assert_eq!(requests.len(), 2, "each request once");
    assert_eq!(requests[1].1.as_deref(), Some("jobs/1"));
    assert_eq!(row(pool, one).await, ("pending".into(), Some("http_503".into()), 1, None, Some(to_us(again)), false));
    assert_eq!(
        attempts(pool, one).await,
        vec![(1, "retry".into(), Some(requests[0].0), false), (1, "delivered".into(), Some(requests[0].0), false)]
    );
    assert_eq!(row(pool, two).await.0, "delivered");
    assert_eq!(attempts(pool, two).await, vec![(1, "delivered".into(), Some(requests[1].0), false)]);
}
