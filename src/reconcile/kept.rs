//! The reconcile reports kept in the ledger (`store::reconciles`): every report
//! `POST /v1/reconcile` answers, and `surety reconcile --record`'s. The dashboard's reconcile page
//! and the `reconcile_unexplained` alert rule read the latest, so it survives a restart and every
//! process on a shared ledger sees the same one.

use chrono::{DateTime, Utc};

use super::report::{Mismatch, Report};
use crate::store::reconciles::ReconcileRecord;
use crate::store::{Store, StoreError};

/// Mismatches (and bad rows) kept with a report: the largest amounts first. The totals still
/// count them all.
pub const KEPT_MISMATCHES: usize = 100;

/// A kept report: when, by whom, and the report trimmed to [`KEPT_MISMATCHES`].
#[derive(Clone, Debug)]
pub struct Recorded {
    pub at: DateTime<Utc>,
    /// `admin token #k` (or `open API`) for `POST /v1/reconcile`, `cli:<OS user>` for
    /// `surety reconcile --record`.
    pub by: String,
    pub report: Report,
}

/// The report as it is kept: its largest [`KEPT_MISMATCHES`] mismatches and first bad rows.
pub fn trimmed(report: &Report) -> Report {
    let mut largest: Vec<&Mismatch> = report.mismatches.iter().collect();
    largest.sort_by(|a, b| b.value.unwrap_or(0.0).total_cmp(&a.value.unwrap_or(0.0)));
    Report {
        window: report.window.clone(),
        totals: report.totals.clone(),
        destinations: report.destinations.clone(),
        mismatches: largest.into_iter().take(KEPT_MISMATCHES).cloned().collect(),
        bad_rows: report.bad_rows.iter().take(KEPT_MISMATCHES).cloned().collect(),
    }
}

/// Keeps `report` (trimmed) in the ledger as run at `at` by `by`.
pub async fn record(store: &dyn Store, at: DateTime<Utc>, by: &str, report: &Report) -> Result<(), StoreError> {
    let kept = trimmed(report);
    let record = ReconcileRecord {
        recorded_at: at,
        recorded_by: by.to_owned(),
        since: kept.window.since,
        until: kept.window.until,
        unexplained: kept.totals.unexplained,
        explained: kept.totals.explained,
        report: serde_json::to_string(&kept)?,
    };
    store.record_reconcile(record).await?;
    Ok(())
}

/// The latest report kept in the ledger, if any.
pub async fn latest(store: &dyn Store) -> Result<Option<Recorded>, StoreError> {
    let Some(stored) = store.reconciles(1).await?.into_iter().next() else {
        return Ok(None);
    };
    let record = stored.record;
    let report: Report = serde_json::from_str(&record.report)
        .map_err(|e| StoreError::Corrupt(format!("reconcile report #{}: {e}", stored.id)))?;
    Ok(Some(Recorded { at: record.recorded_at, by: record.recorded_by, report }))
}

/// Who runs `surety reconcile --record`: `cli:<OS user>` (`USER`, `LOGNAME` or `USERNAME`), as
/// `surety dlq` records its replays and settlements.
pub fn cli_user() -> String {
    let user = ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "unknown".to_owned());
    format!("cli:{}", user.trim())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::reconcile::{BadRow, DestReport};
    use crate::store::sqlite::{SqliteStore, Synchronous};

    #[tokio::test]
    async fn the_latest_report_reads_back_with_its_largest_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("surety.db"), Synchronous::Normal).unwrap();
        assert!(latest(&store).await.unwrap().is_none());
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 3, 0, 0).unwrap();
        let mut report = Report::new(at - chrono::Duration::days(1), at);
        report.destinations.insert(
            "ga4-web".into(),
            DestReport { unexplained: 150, platform_reported: Some(7), ..Default::default() },
        );
        report.mismatches = (0..150)
            .map(|i| Mismatch {
                key: format!("order:{i}:order_paid"),
                event_id: Some(format!("order:{i}:order_paid")),
                destination: "ga4-web".into(),
                class: "not_received".into(),
                detail: "never came".into(),
                value: Some(f64::from(i)),
            })
            .collect();
        report.bad_rows = vec![BadRow { file: "shop.csv".into(), line: 9, message: "not a time".into() }];
        report.finish();
        record(&store, at, "cli:nightly", &report).await.unwrap();
        record(&store, at + chrono::Duration::hours(1), "admin token #1", &report).await.unwrap();

        let last = latest(&store).await.unwrap().expect("a kept report");
        assert_eq!((last.at, last.by.as_str()), (at + chrono::Duration::hours(1), "admin token #1"));
        assert_eq!(last.report.window.since, at - chrono::Duration::days(1));
        assert_eq!(last.report.totals.unexplained, 150, "the totals count every mismatch");
        assert_eq!(last.report.mismatches.len(), KEPT_MISMATCHES);
        assert_eq!(last.report.mismatches[0].value, Some(149.0), "the largest first");
        assert_eq!(last.report.mismatches[KEPT_MISMATCHES - 1].value, Some(50.0));
        assert_eq!(last.report.bad_rows, report.bad_rows);
        assert_eq!(last.report.destinations["ga4-web"].platform_reported, Some(7));
    }
}
