-- A person's settlement of a delivery that waited for one (dead, rejected or in_doubt): what
-- they found on the platform (`delivered` or `not_delivered`), who, when and why. The delivery
-- itself ends `delivered` or `skipped` with reason `settled_by_person`; nothing is sent.
CREATE TABLE settlements (
    id              BIGSERIAL PRIMARY KEY,
    delivery_id     BIGINT  NOT NULL,
    at              BIGINT  NOT NULL,
    settled_as      TEXT    NOT NULL,
    settled_by      TEXT    NOT NULL,
    note            TEXT,
    previous_state  TEXT    NOT NULL,
    previous_reason TEXT
);
CREATE INDEX settlements_delivery ON settlements (delivery_id);
