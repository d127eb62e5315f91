-- The reconcile reports kept in the ledger (store::reconciles): what `POST /v1/reconcile` answered
-- and `surety reconcile --record` found, read by the dashboard and the `reconcile_unexplained`
-- alert rule. Times in microseconds since the epoch; `report` is the kept report. Only the newest
-- 50 are kept: recording one deletes the older ones in the same transaction.
CREATE TABLE reconcile_reports (
    id BIGSERIAL PRIMARY KEY,
    recorded_at BIGINT NOT NULL,
    recorded_by TEXT NOT NULL,
    window_since BIGINT NOT NULL,
    window_until BIGINT NOT NULL,
    unexplained BIGINT NOT NULL,
    explained BIGINT NOT NULL,
    report JSONB NOT NULL
);
