//! Deliveries per destination per hour on PostgreSQL (`store::over_time`): the same query as
//! SQLite's.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::Row as _;

use super::to_us;
use crate::store::over_time::{self, HourCounts, Row};
use crate::store::StoreError;

pub(super) async fn deliveries_over_time(pool: &PgPool, since: DateTime<Utc>) -> Result<Vec<HourCounts>, StoreError> {
    let sql = over_time::SQL.replace("{deliveries}", "deliveries");
    let rows = sqlx::query(&sql)
        .bind(to_us(since))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<Vec<Row>, StoreError>>()?;
    Ok(over_time::merge(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::testdb;
    use crate::store::{ReplaySelector, Store};

    async fn delivery(pool: &PgPool, id: i64, dest: &str, state: &str, at: DateTime<Utc>) {
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, destination, dest_event, browser_tracked, strip_personal, state, \
             created_at, updated_at) VALUES ($1, $2, $3, 'purchase', FALSE, FALSE, $4, $5, $5)",
        )
        .bind(id)
        .bind(format!("e{id}"))
        .bind(dest)
        .bind(state)
        .bind(to_us(at))
        .execute(pool)
        .await
        .unwrap();
    }

    async fn attempt(pool: &PgPool, delivery_id: i64, outcome: &str, at: DateTime<Utc>) {
        sqlx::query("INSERT INTO attempts (delivery_id, attempt, at, outcome) VALUES ($1, 1, $2, $3)")
            .bind(delivery_id)
            .bind(to_us(at))
            .bind(outcome)
            .execute(pool)
            .await
            .unwrap();
    }

    /// The fixture of the SQLite test (`store::sqlite::over_time`), with the same answer; and a
    /// replay records who made it.
    #[tokio::test]
    async fn counts_what_ended_in_each_hour_as_sqlite_does_and_a_replay_says_who() {
        let store = testdb::fresh().await;
        let pool = store.pool();
        let now = DateTime::parse_from_rfc3339("2026-12-07T18:25:00Z").unwrap().to_utc();
        let h = |n: i64| now - chrono::Duration::hours(n);
        delivery(pool, 1, "ga4", "delivered", h(0)).await;
        delivery(pool, 2, "ga4", "delivered", h(0)).await;
        delivery(pool, 3, "ga4", "rejected", h(2)).await;
        delivery(pool, 4, "meta", "dead", h(1)).await;
        delivery(pool, 5, "meta", "in_doubt", h(1)).await;
        delivery(pool, 6, "meta", "pending", h(0)).await;
        delivery(pool, 7, "meta", "skipped", h(0)).await;
        delivery(pool, 8, "ga4", "delivered", h(30)).await;
        attempt(pool, 4, "retry", h(3)).await;
        attempt(pool, 4, "retry", h(1)).await;
        attempt(pool, 6, "retry", h(0)).await;
        attempt(pool, 1, "delivered", h(0)).await;
        attempt(pool, 8, "retry", h(30)).await;
        let got: Vec<_> = store
            .deliveries_over_time(over_time::since(now, 24))
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.destination, (now - c.hour).num_hours(), c.delivered, c.retried, c.failed))
            .collect();
        let want = [
            ("ga4".to_owned(), 2, 0, 0, 1),
            ("ga4".to_owned(), 0, 2, 0, 0),
            ("meta".to_owned(), 3, 0, 1, 0),
            ("meta".to_owned(), 1, 0, 1, 2),
            ("meta".to_owned(), 0, 0, 1, 0),
        ];
        assert_eq!(got, want);

        let sel = ReplaySelector { delivery_ids: vec![3], by: Some("console:ops".into()), ..Default::default() };
        assert_eq!(store.replay(sel, false, now).await.unwrap().replayed, vec![3]);
        let by: Vec<Option<String>> =
            sqlx::query_scalar("SELECT replayed_by FROM replays").fetch_all(pool).await.unwrap();
        assert_eq!(by, [Some("console:ops".to_owned())]);
    }
}
