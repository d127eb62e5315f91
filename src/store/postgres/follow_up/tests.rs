//! Follow-ups on a real PostgreSQL: when they are due, and how each answer settles the request's
//! deliveries.

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use crate::core::FollowUp;
use crate::core::{AttemptOutcome, DeliveryState};
use crate::store::postgres::queue::tests::{attempts, event, pending, request, row, t0, update};
use crate::store::postgres::{testdb, to_us, PgStore};
use crate::store::{BatchRecord, DueFollowUp, ReplaySelector, Store};

const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// Delivers `orders` to `gads` in one request that asks for a follow-up at `ask`; returns the
/// request's id and the deliveries' ids.
async fn delivered(store: &PgStore, orders: &[&str], platform_id: &str, ask: DateTime<Utc>) -> (i64, Vec<i64>) {
    let pool = store.pool();
    let mut ids = Vec::new();
    for order in orders {
        ids.push(pending(pool, &event(order, "order_paid", Duration::seconds(60)), "gads", "purchase").await);
    }
    let claimed = store.claim("gads", 100, LEASE, "w", t0()).await.unwrap();
    assert_eq!(claimed.len(), ids.len());
    let rec = BatchRecord {
        destination: "gads".into(),
        owner: "w".into(),
        requests: vec![request(t0() - Duration::seconds(1))],
        updates: ids.iter().map(|id| update(*id, DeliveryState::Delivered, AttemptOutcome::Delivered)).collect(),
        follow_ups: vec![(0, platform_id.into(), ask)],
    };
    store.record(rec, t0()).await.unwrap();
    let request_id = sqlx::query_scalar("SELECT id FROM requests WHERE platform_request_id = $1")
        .bind(platform_id)
        .fetch_one(pool)
        .await
        .unwrap();
    (request_id, ids)
}

/// (follow_up summary, follow_up_at) of a request.
async fn request_row(pool: &PgPool, id: i64) -> (Option<String>, Option<i64>) {
    sqlx::query_as("SELECT follow_up, follow_up_at FROM requests WHERE id = $1").bind(id).fetch_one(pool).await.unwrap()
}

async fn messages(pool: &PgPool, id: i64) -> Option<String> {
    sqlx::query_scalar("SELECT messages FROM deliveries WHERE id = $1").bind(id).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn a_follow_up_is_due_from_its_time_on_and_asking_again_moves_it() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let ask = t0() + Duration::minutes(30);
    let (request_id, ids) = delivered(&store, &["1"], "jobs/1", ask).await;
    let (later, _) = delivered(&store, &["2"], "jobs/2", ask + Duration::minutes(5)).await;

    assert!(store.due_follow_ups("gads", ask - Duration::seconds(1), 10).await.unwrap().is_empty());
    assert!(store.due_follow_ups("ga4", ask, 10).await.unwrap().is_empty(), "per destination");
    let hour = ask + Duration::hours(1);
    let first = store.due_follow_ups("gads", hour, 1).await.unwrap();
    assert_eq!(first.iter().map(|d| d.request_id).collect::<Vec<_>>(), vec![request_id], "oldest due first, limited");
    let other = store.due_follow_ups("gads", hour, 10).await.unwrap();
    assert_eq!(
        other.iter().map(|d| d.request_id).collect::<Vec<_>>(),
        vec![later],
        "a request being asked about is not handed to a second asker"
    );
    // Nobody recorded an answer within the lease: both are due again.
    let lapsed = hour + Duration::seconds(61);
    let due = store.due_follow_ups("gads", lapsed, 10).await.unwrap();
    let sent_at = t0() - Duration::seconds(1);
    assert_eq!(
        due,
        vec![
            DueFollowUp { request_id, platform_request_id: "jobs/1".into(), sent_at },
            DueFollowUp { request_id: later, platform_request_id: "jobs/2".into(), sent_at },
        ]
    );

    let again = ask + Duration::hours(2);
    store.record_follow_up(request_id, FollowUp::NotYet, Some(again), lapsed).await.unwrap();
    assert_eq!(request_row(pool, request_id).await, (Some("processing".into()), Some(to_us(again))));
    let due = store.due_follow_ups("gads", lapsed + Duration::seconds(61), 10).await.unwrap();
    assert_eq!(due.iter().map(|d| d.request_id).collect::<Vec<_>>(), vec![later], "asked again at its new time only");
    store.record_follow_up(request_id, FollowUp::Error("timeout".into()), Some(again), ask).await.unwrap();
    assert_eq!(request_row(pool, request_id).await.0.as_deref(), Some("could not ask: timeout"));
    assert_eq!(row(pool, ids[0]).await.1.as_deref(), Some("sent"), "no answer yet: nothing settled");
    assert_eq!(attempts(pool, ids[0]).await.len(), 1);
}

#[tokio::test]
async fn a_failed_request_rejects_its_deliveries_that_were_not_replayed() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let ask = t0() + Duration::minutes(30);
    let (request_id, ids) = delivered(&store, &["1", "2", "3"], "jobs/1", ask).await;
    let replayed = ReplaySelector { delivery_ids: vec![ids[2]], ..ReplaySelector::default() };
    assert_eq!(store.replay(replayed, true, t0()).await.unwrap().replayed, vec![ids[2]]);

    let failed = FollowUp::Failed { messages: vec!["bad click id".into(), "2 of 3 failed".into()] };
    store.record_follow_up(request_id, failed, Some(ask + Duration::hours(1)), ask).await.unwrap();
    let summary = "processing failed: bad click id; 2 of 3 failed";
    assert_eq!(request_row(pool, request_id).await, (Some(summary.into()), None), "a final answer ends asking");
    assert!(store.due_follow_ups("gads", ask + Duration::days(1), 10).await.unwrap().is_empty());
    for id in &ids[..2] {
        assert_eq!(row(pool, *id).await.0, "rejected");
        assert_eq!(row(pool, *id).await.1.as_deref(), Some("processing_failed"));
        assert_eq!(messages(pool, *id).await.as_deref(), Some(r#"["bad click id","2 of 3 failed"]"#));
        let logged = attempts(pool, *id).await;
        assert_eq!(logged.last().unwrap(), &(1, "follow_up".to_owned(), Some(request_id), false), "{logged:?}");
    }
    assert_eq!(row(pool, ids[2]).await.0, "pending", "a replayed delivery is not settled by an old request");
}

#[tokio::test]
async fn accepted_partial_and_unconfirmed_stay_delivered_with_their_reason() {
    let store = testdb::fresh().await;
    let pool = store.pool();
    let ask = t0() + Duration::minutes(30);
    let (accepted, a) = delivered(&store, &["1"], "jobs/1", ask).await;
    let (partial, p) = delivered(&store, &["2"], "jobs/2", ask).await;
    let (unknown, u) = delivered(&store, &["3"], "jobs/3", ask).await;
    sqlx::query("UPDATE deliveries SET messages = '[\"kept\"]' WHERE id = $1").bind(a[0]).execute(pool).await.unwrap();

    store.record_follow_up(accepted, FollowUp::Accepted, None, ask).await.unwrap();
    let partial_answer = FollowUp::Partial { messages: vec!["1 of 2 refused".into()] };
    store.record_follow_up(partial, partial_answer, None, ask).await.unwrap();
    let why = "the platform does not know the request";
    store.record_follow_up(unknown, FollowUp::Unconfirmed(why.into()), Some(ask), ask).await.unwrap();

    assert_eq!(row(pool, a[0]).await.0, "delivered");
    assert_eq!(row(pool, a[0]).await.1.as_deref(), Some("accepted"));
    assert_eq!(messages(pool, a[0]).await.as_deref(), Some(r#"["kept"]"#), "no messages: the old ones stay");
    assert_eq!(row(pool, p[0]).await.1.as_deref(), Some("partially_accepted"));
    assert_eq!(messages(pool, p[0]).await.as_deref(), Some(r#"["1 of 2 refused"]"#));
    assert_eq!(row(pool, u[0]).await.0, "delivered");
    assert_eq!(row(pool, u[0]).await.1.as_deref(), Some("processing_unknown"));
    assert_eq!(messages(pool, u[0]).await, Some(serde_json::to_string(&[why]).unwrap()));
    assert_eq!(request_row(pool, unknown).await, (Some(format!("gave up: {why}")), None), "giving up ends asking");
    assert_eq!(request_row(pool, partial).await.0.as_deref(), Some("partially accepted: 1 of 2 refused"));
    assert_eq!(attempts(pool, u[0]).await.len(), 2);
}
