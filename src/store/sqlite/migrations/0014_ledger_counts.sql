-- The ledger's totals (Store::counts: events, routed, conflicts, deliveries by destination, state
-- and reason), kept by triggers as rows change, so the dashboard's overview and the alert reader
-- read a handful of rows instead of counting the whole history (docs/adr/0010-a-long-history.md).
-- SQLite has one writer, so the counter rows are never contended. `kind` is 'delivery' (with
-- destination, state and reason; '' for no reason), 'event' (state '1' routed, '0' not) or
-- 'conflict'.
CREATE TABLE ledger_counts (
    kind        TEXT    NOT NULL,
    destination TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (kind, destination, state, reason)
) WITHOUT ROWID;

INSERT INTO ledger_counts (kind, destination, state, reason, n)
    SELECT 'delivery', destination, state, coalesce(reason, ''), count(*) FROM deliveries
    GROUP BY destination, state, coalesce(reason, '');
INSERT INTO ledger_counts (kind, destination, state, reason, n)
    SELECT 'event', '', CAST(routed AS TEXT), '', count(*) FROM events GROUP BY routed;
INSERT INTO ledger_counts (kind, destination, state, reason, n)
    SELECT 'conflict', '', '', '', count(*) FROM conflicts HAVING count(*) > 0;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO ledger_counts VALUES ('delivery', NEW.destination, NEW.state, coalesce(NEW.reason, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries BEGIN
    UPDATE ledger_counts SET n = n - 1
        WHERE kind = 'delivery' AND destination = OLD.destination AND state = OLD.state
        AND reason = coalesce(OLD.reason, '');
END;
CREATE TRIGGER deliveries_count_update AFTER UPDATE OF state, reason, destination ON deliveries
    WHEN OLD.state IS NOT NEW.state OR OLD.reason IS NOT NEW.reason OR OLD.destination IS NOT NEW.destination
BEGIN
    UPDATE ledger_counts SET n = n - 1
        WHERE kind = 'delivery' AND destination = OLD.destination AND state = OLD.state
        AND reason = coalesce(OLD.reason, '');
    INSERT INTO ledger_counts VALUES ('delivery', NEW.destination, NEW.state, coalesce(NEW.reason, ''), 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER events_count_insert AFTER INSERT ON events BEGIN
    INSERT INTO ledger_counts VALUES ('event', '', CAST(NEW.routed AS TEXT), '', 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER events_count_delete AFTER DELETE ON events BEGIN
    UPDATE ledger_counts SET n = n - 1 WHERE kind = 'event' AND destination = '' AND state = CAST(OLD.routed AS TEXT)
        AND reason = '';
END;
CREATE TRIGGER events_count_update AFTER UPDATE OF routed ON events WHEN OLD.routed IS NOT NEW.routed BEGIN
    UPDATE ledger_counts SET n = n - 1 WHERE kind = 'event' AND destination = '' AND state = CAST(OLD.routed AS TEXT)
        AND reason = '';
    INSERT INTO ledger_counts VALUES ('event', '', CAST(NEW.routed AS TEXT), '', 1) ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER conflicts_count_insert AFTER INSERT ON conflicts BEGIN
    INSERT INTO ledger_counts VALUES ('conflict', '', '', '', 1) ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER conflicts_count_delete AFTER DELETE ON conflicts BEGIN
    UPDATE ledger_counts SET n = n - 1 WHERE kind = 'conflict' AND destination = '' AND state = '' AND reason = '';
END;
