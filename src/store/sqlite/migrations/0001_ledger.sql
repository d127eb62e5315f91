-- The ledger: events, the identity bridge, deliveries (the queue), requests and attempts.
-- Times are microseconds since the Unix epoch (UTC).

CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    event_id     TEXT    NOT NULL UNIQUE,
    kind         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    subject_type TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    occurred_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    content_hash TEXT    NOT NULL,
    routed       INTEGER NOT NULL,
    body         TEXT    NOT NULL
);
CREATE INDEX events_subject ON events (subject_type, subject_id);

-- Same event_id, different content: the original stands, the attempt is kept here.
CREATE TABLE conflicts (
    id           INTEGER PRIMARY KEY,
    event_id     TEXT    NOT NULL,
    received_at  INTEGER NOT NULL,
    content_hash TEXT    NOT NULL,
    body         TEXT    NOT NULL
);
CREATE INDEX conflicts_event ON conflicts (event_id);

-- The identity bridge: the merged view per subject, and every capture that built it.
CREATE TABLE identities (
    subject_type TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    identity     TEXT    NOT NULL,
    consent      TEXT    NOT NULL,
    captured_at  INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (subject_type, subject_id)
);
CREATE TABLE identity_captures (
    id           INTEGER PRIMARY KEY,
    subject_type TEXT    NOT NULL,
    subject_id   TEXT    NOT NULL,
    captured_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    identity     TEXT    NOT NULL,
    consent      TEXT    NOT NULL
);
CREATE INDEX identity_captures_subject ON identity_captures (subject_type, subject_id);

-- One row per (event, destination): its state machine. The database is the queue.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT    NOT NULL,
    destination     TEXT    NOT NULL,
    dest_event      TEXT    NOT NULL,
    browser_tracked INTEGER NOT NULL,
    strip_personal  INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT,
    messages        TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    forced          INTEGER NOT NULL DEFAULT 0, -- a forced replay of a delivered delivery is under way
    next_attempt_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (event_id, destination)
);
CREATE INDEX deliveries_due ON deliveries (destination, next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state IN ('claimed', 'sending');
CREATE INDEX deliveries_state ON deliveries (state, destination);

-- Every HTTP request made to a platform.
CREATE TABLE requests (
    id               INTEGER PRIMARY KEY,
    destination      TEXT    NOT NULL,
    endpoint         TEXT    NOT NULL,
    sent_at          INTEGER NOT NULL,
    duration_us      INTEGER NOT NULL,
    status           INTEGER,
    error            TEXT,
    response_excerpt TEXT    NOT NULL,
    body_sha256      TEXT    NOT NULL
);

-- Every attempt of every delivery, and what it came to.
CREATE TABLE attempts (
    id             INTEGER PRIMARY KEY,
    delivery_id    INTEGER NOT NULL,
    request_id     INTEGER,
    attempt        INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    outcome        TEXT    NOT NULL,
    detail         TEXT,
    payload_sha256 TEXT,
    forced         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attempts_delivery ON attempts (delivery_id);

-- Every replay, forced or not.
CREATE TABLE replays (
    id              INTEGER PRIMARY KEY,
    delivery_id     INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    previous_state  TEXT    NOT NULL,
    previous_reason TEXT,
    forced          INTEGER NOT NULL
);
CREATE INDEX replays_delivery ON replays (delivery_id);
