-- The transactional outbox and the consumer inbox every Guestloop service keeps in its own
-- schema. Versions 1-999 belong to libs/outbox; services number theirs from 1000.

CREATE TABLE outbox (
    id             BIGSERIAL PRIMARY KEY,
    event_id       UUID        NOT NULL UNIQUE,
    aggregate_type TEXT        NOT NULL,
    aggregate_id   TEXT        NOT NULL,
    sequence       BIGINT      NOT NULL,
    property_id    TEXT        NOT NULL,
    event_type     TEXT        NOT NULL,
    occur_time     TIMESTAMPTZ NOT NULL,
    -- The encoded guestloop.events.v1.EventEnvelope, exactly as delivered.
    envelope       BYTEA       NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);

-- How far each subscriber has acknowledged; the relay leases a row with SKIP LOCKED so
-- several replicas never deliver the same subscriber's stream at once.
CREATE TABLE outbox_cursor (
    subscriber        TEXT PRIMARY KEY,
    last_delivered_id BIGINT      NOT NULL DEFAULT 0,
    failures          INT         NOT NULL DEFAULT 0,
    last_error        TEXT,
    update_time       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Events this service has applied, so a redelivery changes nothing.
CREATE TABLE inbox (
    event_id     UUID PRIMARY KEY,
    source       TEXT        NOT NULL,
    applied_time TIMESTAMPTZ NOT NULL DEFAULT now()
);
