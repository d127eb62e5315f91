-- Search keys (`Store::search`, `store::search::intake_keys`): what each message filed its
-- subjects under at intake — personal fields as their SHA-256 hashes (never a raw value), click
-- ids, user ids, and the ids a source gave (refunds, disputes, payments, webhooks). A key names a
-- subject; a search lists every event of it. Pruned with the aliases (`created_at`).
CREATE TABLE search_keys (
    key          TEXT    NOT NULL,
    subject_type TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (key, subject_type, subject_id)
);
CREATE INDEX search_keys_created ON search_keys (created_at);
-- A subject's id without its type (`1042`), and a receipt's id without its source (`evt_…`).
CREATE INDEX events_subject_id ON events (subject_id);
CREATE INDEX receipts_receipt_id ON receipts (receipt_id);

-- What the ledger already holds, filed the same way (the fbclid inside an fbc, and the ids in
-- derived event ids, only for messages from now on).
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || json_extract(body, '$.identity.email.google'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.email.google') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || json_extract(body, '$.identity.email.meta'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.email.meta') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || json_extract(body, '$.identity.phone.google'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.phone.google') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || json_extract(body, '$.identity.phone.meta'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.phone.meta') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || json_extract(body, '$.identity.gclid'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.gclid') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || json_extract(body, '$.identity.gbraid'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.gbraid') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || json_extract(body, '$.identity.wbraid'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.wbraid') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || json_extract(body, '$.identity.li_fat_id'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.li_fat_id') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || json_extract(body, '$.identity.fbc'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.fbc') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'user_id:' || json_extract(body, '$.identity.user_id'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.identity.user_id') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'id:' || json_extract(body, '$.attributes.stripe_payment_intent'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.attributes.stripe_payment_intent') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'id:' || json_extract(body, '$.attributes.stripe_customer'), subject_type, subject_id, received_at
    FROM events WHERE json_type(body, '$.attributes.stripe_customer') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || json_extract(identity, '$.email.google'), subject_type, subject_id, updated_at
    FROM identities WHERE json_type(identity, '$.email.google') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || json_extract(identity, '$.email.meta'), subject_type, subject_id, updated_at
    FROM identities WHERE json_type(identity, '$.email.meta') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || json_extract(identity, '$.phone.google'), subject_type, subject_id, updated_at
    FROM identities WHERE json_type(identity, '$.phone.google') = 'text';
INSERT OR IGNORE INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || json_extract(identity, '$.phone.meta'), subject_type, subject_id, updated_at
    FROM identities WHERE json_type(identity, '$.phone.meta') = 'text';
