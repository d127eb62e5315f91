-- Who replayed a delivery: `admin token #k` (API), `console:<user>` (the console's form), `cli`.
-- NULL for replays recorded before this column existed.
ALTER TABLE replays ADD COLUMN replayed_by TEXT;
