-- The reconcile reports kept in the ledger (store::reconciles): what `POST /v1/reconcile` answered
-- and `surety reconcile --record` found, read by the dashboard and the `reconcile_unexplained`
-- alert rule. Times in microseconds since the epoch; `report` is the kept report as JSON. Only
-- the newest 50 are kept: recording one deletes the older ones in the same transaction.
CREATE TABLE reconcile_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    window_since INTEGER NOT NULL,
    window_until INTEGER NOT NULL,
    unexplained INTEGER NOT NULL,
    explained INTEGER NOT NULL,
    report TEXT NOT NULL
);
