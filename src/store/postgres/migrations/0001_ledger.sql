-- The ledger on PostgreSQL: the same tables as the SQLite ledger (src/store/sqlite/migrations),
-- for several Surety processes sharing one database. Times are microseconds since the Unix
-- epoch (UTC), as in SQLite, so both stores read and write the same values.

CREATE TABLE events (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    subject_type TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    occurred_at  BIGINT  NOT NULL,
    received_at  BIGINT  NOT NULL,
    content_hash TEXT    NOT NULL,
    routed       BOOLEAN NOT NULL,
    body         TEXT    NOT NULL
);
CREATE INDEX events_subject ON events (subject_type, subject_id);

CREATE TABLE conflicts (
    id           BIGSERIAL PRIMARY KEY,
    event_id     TEXT   NOT NULL,
    received_at  BIGINT NOT NULL,
    content_hash TEXT   NOT NULL,
    body         TEXT   NOT NULL
);
CREATE INDEX conflicts_event ON conflicts (event_id);

CREATE TABLE identities (
    subject_type TEXT   NOT NULL,
    subject_id   TEXT   NOT NULL,
    identity     TEXT   NOT NULL,
    consent      TEXT   NOT NULL,
    captured_at  BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
);
CREATE TABLE identity_captures (
    id           BIGSERIAL PRIMARY KEY,
    subject_type TEXT   NOT NULL,
    subject_id   TEXT   NOT NULL,
    captured_at  BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    identity     TEXT   NOT NULL,
    consent      TEXT   NOT NULL
);
CREATE INDEX identity_captures_subject ON identity_captures (subject_type, subject_id);

-- One row per (event, destination): its state machine. The database is the queue; several
-- processes claim from it with FOR UPDATE SKIP LOCKED.
CREATE TABLE deliveries (
    id              BIGSERIAL PRIMARY KEY,
    event_id        TEXT    NOT NULL,
    destination     TEXT    NOT NULL,
    dest_event      TEXT    NOT NULL,
    browser_tracked BOOLEAN NOT NULL,
    strip_personal  BOOLEAN NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT,
    messages        TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    forced          BOOLEAN NOT NULL DEFAULT FALSE,
    next_attempt_at BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    route           TEXT,
    UNIQUE (event_id, destination)
);
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state IN ('claimed', 'sending');
CREATE INDEX deliveries_state ON deliveries (state, destination);

CREATE TABLE requests (
    id                  BIGSERIAL PRIMARY KEY,
    destination         TEXT    NOT NULL,
    endpoint            TEXT    NOT NULL,
    sent_at             BIGINT  NOT NULL,
    duration_us         BIGINT  NOT NULL,
    status              INTEGER,
    error               TEXT,
    response_excerpt    TEXT    NOT NULL,
    body_sha256         TEXT    NOT NULL,
    platform_request_id TEXT,
    follow_up_at        BIGINT,
    follow_up           TEXT
);
CREATE INDEX requests_follow_up ON requests (destination, follow_up_at) WHERE follow_up_at IS NOT NULL;

CREATE TABLE attempts (
    id             BIGSERIAL PRIMARY KEY,
    delivery_id    BIGINT  NOT NULL,
    request_id     BIGINT,
    attempt        INTEGER NOT NULL,
    at             BIGINT  NOT NULL,
    outcome        TEXT    NOT NULL,
    detail         TEXT,
    payload_sha256 TEXT,
    forced         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);
CREATE INDEX attempts_request ON attempts (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE replays (
    id              BIGSERIAL PRIMARY KEY,
    delivery_id     BIGINT  NOT NULL,
    at              BIGINT  NOT NULL,
    previous_state  TEXT    NOT NULL,
    previous_reason TEXT,
    forced          BOOLEAN NOT NULL
);
CREATE INDEX replays_delivery ON replays (delivery_id);

CREATE TABLE receipts (
    id         BIGSERIAL PRIMARY KEY,
    source     TEXT   NOT NULL,
    receipt_id TEXT   NOT NULL,
    topic      TEXT   NOT NULL,
    status     TEXT   NOT NULL,
    detail     TEXT,
    first_at   BIGINT NOT NULL,
    last_at    BIGINT NOT NULL,
    times      BIGINT NOT NULL DEFAULT 1,
    UNIQUE (source, receipt_id)
);
CREATE INDEX receipts_status ON receipts (status, last_at);

CREATE TABLE subject_aliases (
    alias        TEXT PRIMARY KEY,
    subject_type TEXT   NOT NULL,
    subject_id   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);
