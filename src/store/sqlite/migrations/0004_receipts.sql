-- What each source handed over, per delivery of it: a Stripe event (evt_…), a Shopify webhook
-- (X-Shopify-Webhook-Id), a Segment message that was not turned into an event. `status` is
-- mapped, ignored (a type no kind is configured for) or invalid (could not be mapped: detail
-- says why). `times` counts redeliveries.
CREATE TABLE receipts (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    receipt_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT,
    first_at INTEGER NOT NULL,
    last_at INTEGER NOT NULL,
    times INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX receipts_source_id ON receipts (source, receipt_id);
CREATE INDEX receipts_status ON receipts (status, last_at);

-- Another name a source uses for a subject: Stripe knows an order by its payment intent and
-- charge ids too, and a dispute names only those.
CREATE TABLE subject_aliases (
    alias TEXT PRIMARY KEY,
    subject_type TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
