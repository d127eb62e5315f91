-- The exact body each request carried (personal fields in it are already hashes), kept for
-- `[ledger] keep_request_bodies_days` and then set to NULL: `body_sha256` stays.
ALTER TABLE requests ADD COLUMN body TEXT;
CREATE INDEX requests_body ON requests (sent_at) WHERE body IS NOT NULL;
-- Attempts logged before the delivery's last replay: a replay gives the delivery a fresh retry
-- budget (`attempts` back to 0), while the attempt log keeps counting (attempt 3 after 1 and 2).
ALTER TABLE deliveries ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
