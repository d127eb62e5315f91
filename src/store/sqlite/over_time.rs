//! Deliveries per destination per hour on SQLite (`store::over_time`).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};

use super::to_us;
use crate::store::over_time::{self, HourCounts, Row};
use crate::store::StoreError;

/// The query, with the window's scan of `deliveries` pinned to its partial index.
fn sql() -> String {
    over_time::SQL.replace("{deliveries}", "deliveries INDEXED BY deliveries_ended")
}

pub(super) fn deliveries_over_time(conn: &Connection, since: DateTime<Utc>) -> Result<Vec<HourCounts>, StoreError> {
    let rows = conn
        .prepare_cached(&sql())?
        .query_map(params![to_us(since)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<Vec<Row>, _>>()?;
    Ok(over_time::merge(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut conn).unwrap();
        conn
    }

    fn delivery(conn: &Connection, id: i64, dest: &str, state: &str, at: DateTime<Utc>) {
        conn.execute(
            "INSERT INTO deliveries (id, event_id, destination, dest_event, browser_tracked, strip_personal, state, \
             created_at, updated_at) VALUES (?1, ?2, ?3, 'purchase', 0, 0, ?4, ?5, ?5)",
            params![id, format!("e{id}"), dest, state, to_us(at)],
        )
        .unwrap();
    }

    fn attempt(conn: &Connection, delivery_id: i64, outcome: &str, at: DateTime<Utc>) {
        conn.execute(
            "INSERT INTO attempts (delivery_id, attempt, at, outcome) VALUES (?1, 1, ?2, ?3)",
            params![delivery_id, to_us(at), outcome],
        )
        .unwrap();
    }

    #[test]
    fn counts_what_ended_in_each_hour_of_the_window_and_nothing_before_it() {
        let conn = ledger();
        let now = DateTime::parse_from_rfc3339("2026-12-07T18:25:00Z").unwrap().to_utc();
        let h = |n: i64| now - chrono::Duration::hours(n);
        delivery(&conn, 1, "ga4", "delivered", h(0));
        delivery(&conn, 2, "ga4", "delivered", h(0));
        delivery(&conn, 3, "ga4", "rejected", h(2));
        delivery(&conn, 4, "meta", "dead", h(1));
        delivery(&conn, 5, "meta", "in_doubt", h(1));
        delivery(&conn, 6, "meta", "pending", h(0));
        delivery(&conn, 7, "meta", "skipped", h(0));
        delivery(&conn, 8, "ga4", "delivered", h(30));
        attempt(&conn, 4, "retry", h(3));
        attempt(&conn, 4, "retry", h(1));
        attempt(&conn, 6, "retry", h(0));
        attempt(&conn, 1, "delivered", h(0));
        attempt(&conn, 8, "retry", h(30));
        let got: Vec<_> = deliveries_over_time(&conn, over_time::since(now, 24))
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
    }

    #[test]
    fn both_halves_range_scan_their_partial_index() {
        let conn = ledger();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", sql()))
            .unwrap()
            .query_map(params![0i64], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(plan.contains("deliveries_ended"), "{plan}");
        assert!(plan.contains("attempts_retry"), "{plan}");
        assert!(plan.contains("SEARCH deliveries USING INDEX deliveries_ended (updated_at>?)"), "{plan}");
        assert!(plan.contains("SEARCH a USING INDEX attempts_retry (at>?)"), "{plan}");
        assert!(!plan.contains("SCAN "), "no full scan: {plan}");
    }
}
