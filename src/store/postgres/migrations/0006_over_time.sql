-- The console's charts read deliveries by the hour they ended and retries by the hour they were
-- attempted (store::over_time): two range scans over these partial indexes, bounded by the window.
CREATE INDEX deliveries_ended ON deliveries (updated_at) WHERE state IN ('delivered', 'rejected', 'dead', 'in_doubt');
CREATE INDEX attempts_retry ON attempts (at) WHERE outcome = 'retry';
