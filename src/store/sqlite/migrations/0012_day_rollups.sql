-- Coverage and late arrivals per UTC event day, cached (reconcile::rollup): `day` counts days
-- since 1970-01-01, `body` is the day's partial aggregates as JSON. A cached day is used only
-- while nothing it counts changed since `computed_at` / `through_seq`, which these range scans
-- over narrow indexes find (ADR 0008): new events by seq (the primary key) and by received_at,
-- events whose body the identity bridge rewrote (changed_at), deliveries that were skipped
-- (ended ones have deliveries_ended), and replays. events_occurred bounds a day's recompute and
-- the live part of a report to that day's events.
CREATE TABLE day_rollups (
    day          INTEGER PRIMARY KEY,
    computed_at  INTEGER NOT NULL,
    through_seq  INTEGER NOT NULL,
    body         TEXT    NOT NULL
);
ALTER TABLE events ADD COLUMN changed_at INTEGER;
CREATE INDEX events_occurred ON events (occurred_at);
CREATE INDEX events_received ON events (received_at);
CREATE INDEX events_changed ON events (changed_at) WHERE changed_at IS NOT NULL;
CREATE INDEX deliveries_skipped ON deliveries (updated_at) WHERE state = 'skipped';
CREATE INDEX replays_at ON replays (at);
