//! Deliveries per destination per UTC hour, for the console's charts: what ended delivered, what
//! ended failed (rejected, dead or in_doubt) and which attempts ended in a retry, by the hour they
//! ended. Both stores run the same two range scans over partial indexes (`deliveries_ended`,
//! `attempts_retry`) from `since` on, and hand back raw `(destination, hour, what, n)` rows that
//! [`merge`] folds into one [`HourCounts`] per destination and hour.
//!
//! A delivery counts in the hour its current state began (`updated_at`): a replayed delivery
//! leaves the hour it ended in before and counts again where it ends next.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The most hours a chart or `GET /v1/deliveries/over-time` reads: a week.
pub const MAX_HOURS: u32 = 168;
/// Microseconds in an hour: the ledger keeps times in microseconds since the epoch.
pub const HOUR_US: i64 = 3_600_000_000;

/// Deliveries that ended, and attempts that ended in a retry, in one destination's hour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HourCounts {
    pub destination: String,
    /// The hour's start (UTC).
    pub hour: DateTime<Utc>,
    pub delivered: u64,
    pub retried: u64,
    /// Ended rejected, dead or in_doubt.
    pub failed: u64,
}

impl HourCounts {
    pub fn total(&self) -> u64 {
        self.delivered.saturating_add(self.retried).saturating_add(self.failed)
    }
}

/// The one query both stores run, with `$1` the window's start in microseconds (SQLite reads
/// `$1` as one named parameter, bound by position like PostgreSQL's) and `{deliveries}` the
/// table as each store names it: SQLite without statistics would rather walk `deliveries_state`
/// (every delivered row) than the window, so it says `INDEXED BY deliveries_ended`. Each half's
/// `WHERE` repeats its partial index's condition word for word, as SQLite needs to use it.
pub const SQL: &str = "\
    SELECT destination, updated_at / 3600000000 AS hour, \
           CASE state WHEN 'delivered' THEN 'delivered' ELSE 'failed' END AS what, COUNT(*) AS n \
    FROM {deliveries} \
    WHERE state IN ('delivered', 'rejected', 'dead', 'in_doubt') AND updated_at >= $1 \
    GROUP BY 1, 2, 3 \
    UNION ALL \
    SELECT d.destination, a.at / 3600000000, 'retried', COUNT(*) \
    FROM attempts a JOIN deliveries d ON d.id = a.delivery_id \
    WHERE a.outcome = 'retry' AND a.at >= $1 \
    GROUP BY 1, 2";

/// What a raw row counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Delivered,
    Retried,
    Failed,
}

impl Ended {
    /// The label the stores' SQL writes (`delivered`, `retried`, `failed`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "delivered" => Some(Self::Delivered),
            "retried" => Some(Self::Retried),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One row as the SQL gives it: destination, hour number since the epoch, what, how many.
pub type Row = (String, i64, String, i64);

/// Folds raw rows into one entry per destination and hour, ordered by destination then hour.
/// Rows of an unknown label, an hour out of chrono's range or a negative count are dropped.
pub fn merge(rows: Vec<Row>) -> Vec<HourCounts> {
    let mut out: std::collections::BTreeMap<(String, i64), HourCounts> = Default::default();
    for (destination, hour, what, n) in rows {
        let (Some(what), Ok(n)) = (Ended::parse(&what), u64::try_from(n)) else { continue };
        let Some(start) = hour.checked_mul(HOUR_US).and_then(DateTime::from_timestamp_micros) else { continue };
        let entry = out.entry((destination.clone(), hour)).or_insert_with(|| HourCounts {
            destination,
            hour: start,
            ..Default::default()
        });
        let slot = match what {
            Ended::Delivered => &mut entry.delivered,
            Ended::Retried => &mut entry.retried,
            Ended::Failed => &mut entry.failed,
        };
        *slot = slot.saturating_add(n);
    }
    out.into_values().collect()
}

/// The start of the window: `hours` (at most [`MAX_HOURS`]) whole hours back from the hour of
/// `now`, this hour included.
pub fn since(now: DateTime<Utc>, hours: u32) -> DateTime<Utc> {
    let hours = i64::from(hours.clamp(1, MAX_HOURS));
    let this_hour = now.timestamp_micros().div_euclid(HOUR_US);
    DateTime::from_timestamp_micros((this_hour - hours + 1) * HOUR_US).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_fold_into_one_entry_per_destination_and_hour() {
        let rows = vec![
            ("meta".to_owned(), 10, "failed".to_owned(), 2),
            ("ga4".to_owned(), 11, "delivered".to_owned(), 5),
            ("ga4".to_owned(), 10, "retried".to_owned(), 3),
            ("ga4".to_owned(), 10, "delivered".to_owned(), 1),
            ("ga4".to_owned(), 10, "bogus".to_owned(), 9),
            ("ga4".to_owned(), 10, "failed".to_owned(), -1),
        ];
        let m = merge(rows);
        let got: Vec<_> = m.iter().map(|h| (h.destination.as_str(), h.delivered, h.retried, h.failed)).collect();
        assert_eq!(got, [("ga4", 1, 3, 0), ("ga4", 5, 0, 0), ("meta", 0, 0, 2)]);
        assert_eq!(m[0].hour.timestamp(), 10 * 3600);
        assert_eq!(m[0].total(), 4);
    }

    #[test]
    fn the_window_starts_on_a_whole_hour_and_includes_the_current_one() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T18:25:00Z").unwrap().to_utc();
        assert_eq!(since(now, 24).to_rfc3339(), "2026-12-06T19:00:00+00:00");
        assert_eq!(since(now, 1).to_rfc3339(), "2026-12-07T18:00:00+00:00");
        assert_eq!(since(now, 0), since(now, 1), "at least the current hour");
        assert_eq!(since(now, 10_000), since(now, MAX_HOURS), "at most a week");
    }
}
