-- Search keys (`Store::search`, `store::search::intake_keys`): what each message filed its
-- subjects under at intake — personal fields as their SHA-256 hashes (never a raw value), click
-- ids, user ids, and the ids a source gave (refunds, disputes, payments, webhooks). A key names a
-- subject; a search lists every event of it. Pruned with the aliases (`created_at`).
CREATE TABLE search_keys (
    key          TEXT   NOT NULL,
    subject_type TEXT   NOT NULL,
    subject_id   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (key, subject_type, subject_id)
);
CREATE INDEX search_keys_created ON search_keys (created_at);
-- A subject's id without its type (`1042`), and a receipt's id without its source (`evt_…`).
CREATE INDEX events_subject_id ON events (subject_id);
CREATE INDEX receipts_receipt_id ON receipts (receipt_id);

-- What the ledger already holds, filed the same way (the fbclid inside an fbc, and the ids in
-- derived event ids, only for messages from now on).
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || (body::jsonb #>> '{identity,email,google}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,email,google}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || (body::jsonb #>> '{identity,email,meta}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,email,meta}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || (body::jsonb #>> '{identity,phone,google}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,phone,google}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || (body::jsonb #>> '{identity,phone,meta}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,phone,meta}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || (body::jsonb #>> '{identity,gclid}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,gclid}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || (body::jsonb #>> '{identity,gbraid}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,gbraid}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || (body::jsonb #>> '{identity,wbraid}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,wbraid}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || (body::jsonb #>> '{identity,li_fat_id}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,li_fat_id}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'click:' || (body::jsonb #>> '{identity,fbc}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,fbc}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'user_id:' || (body::jsonb #>> '{identity,user_id}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{identity,user_id}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'id:' || (body::jsonb #>> '{attributes,stripe_payment_intent}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{attributes,stripe_payment_intent}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'id:' || (body::jsonb #>> '{attributes,stripe_customer}'), subject_type, subject_id, received_at
    FROM events WHERE jsonb_typeof(body::jsonb #> '{attributes,stripe_customer}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || (identity::jsonb #>> '{email,google}'), subject_type, subject_id, updated_at
    FROM identities WHERE jsonb_typeof(identity::jsonb #> '{email,google}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'email:' || (identity::jsonb #>> '{email,meta}'), subject_type, subject_id, updated_at
    FROM identities WHERE jsonb_typeof(identity::jsonb #> '{email,meta}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || (identity::jsonb #>> '{phone,google}'), subject_type, subject_id, updated_at
    FROM identities WHERE jsonb_typeof(identity::jsonb #> '{phone,google}') = 'string'
    ON CONFLICT DO NOTHING;
INSERT INTO search_keys (key, subject_type, subject_id, created_at)
    SELECT 'phone:' || (identity::jsonb #>> '{phone,meta}'), subject_type, subject_id, updated_at
    FROM identities WHERE jsonb_typeof(identity::jsonb #> '{phone,meta}') = 'string'
    ON CONFLICT DO NOTHING;
