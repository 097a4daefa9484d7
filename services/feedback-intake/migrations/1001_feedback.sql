-- feedback-intake's tables, in the feedback schema (the role's search_path).

CREATE TABLE feedback (
    id               UUID PRIMARY KEY,
    property_id      TEXT        NOT NULL,
    channel          SMALLINT    NOT NULL,
    source           TEXT        NOT NULL,
    external_id      TEXT,
    idempotency_key  TEXT,
    guest_id         UUID,
    guest_match      SMALLINT    NOT NULL,
    guest_tier       SMALLINT    NOT NULL DEFAULT 0,
    stay_id          UUID,
    receive_time     TIMESTAMPTZ NOT NULL,
    language         TEXT        NOT NULL,
    text             TEXT        NOT NULL DEFAULT '',
    category         SMALLINT    NOT NULL,
    category_source  SMALLINT    NOT NULL,
    sentiment        SMALLINT    NOT NULL,
    sentiment_source SMALLINT    NOT NULL,
    -- The message parts that are only ever read whole, as encoded protobuf.
    staff_mentions   BYTEA,
    ota_review       BYTEA,
    survey           BYTEA,
    ota_site         SMALLINT    NOT NULL DEFAULT 0,
    low_score        BOOLEAN     NOT NULL DEFAULT FALSE,
    staff_ids        TEXT[]      NOT NULL DEFAULT '{}',
    tags             TEXT[]      NOT NULL DEFAULT '{}',
    case_id          UUID,
    reply_time       TIMESTAMPTZ,
    submitted_by     TEXT        NOT NULL,
    create_time      TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time      TIMESTAMPTZ NOT NULL DEFAULT now(),
    search           TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED
);
-- Replays: the same item from the same source, or the same client key, at a property.
CREATE UNIQUE INDEX feedback_external ON feedback (property_id, source, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX feedback_idempotency ON feedback (property_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX feedback_property_time ON feedback (property_id, receive_time DESC, id DESC);
CREATE INDEX feedback_guest ON feedback (guest_id) WHERE guest_id IS NOT NULL;
CREATE INDEX feedback_search ON feedback USING GIN (search);

CREATE TABLE cases (
    id                  UUID PRIMARY KEY,
    reference           TEXT        NOT NULL UNIQUE,
    property_id         TEXT        NOT NULL,
    origin_feedback_id  UUID        NOT NULL REFERENCES feedback (id),
    guest_id            UUID,
    stay_id             UUID,
    channel             SMALLINT    NOT NULL,
    title               TEXT        NOT NULL,
    description         TEXT        NOT NULL DEFAULT '',
    category            SMALLINT    NOT NULL,
    risk_grade          SMALLINT    NOT NULL,
    grade_overridden    BOOLEAN     NOT NULL DEFAULT FALSE,
    grade_reason        TEXT        NOT NULL DEFAULT '',
    urgency             SMALLINT    NOT NULL,
    department          SMALLINT    NOT NULL,
    assignee_id         TEXT,
    status              SMALLINT    NOT NULL,
    escalation_tier     SMALLINT    NOT NULL,
    open_reason         SMALLINT    NOT NULL,
    repeat              BOOLEAN     NOT NULL DEFAULT FALSE,
    repeat_of           UUID[]      NOT NULL DEFAULT '{}',
    incident_id         UUID,
    guest_tier          SMALLINT    NOT NULL DEFAULT 0,
    open_time           TIMESTAMPTZ NOT NULL,
    first_response_due  TIMESTAMPTZ NOT NULL,
    resolution_due      TIMESTAMPTZ NOT NULL,
    -- While WAITING_FOR_GUEST: since when; the resolution due time moves on by the wait.
    paused_since        TIMESTAMPTZ,
    acknowledge_time    TIMESTAMPTZ,
    resolve_time        TIMESTAMPTZ,
    close_time          TIMESTAMPTZ,
    reopen_count        INT         NOT NULL DEFAULT 0,
    -- {"CNY": 12000, ...} in minor units.
    compensation        JSONB       NOT NULL DEFAULT '{}',
    version             BIGINT      NOT NULL DEFAULT 1,
    update_time         TIMESTAMPTZ NOT NULL DEFAULT now(),
    search              TSVECTOR GENERATED ALWAYS AS (to_tsvector('simple', title || ' ' || description)) STORED
);
CREATE INDEX cases_property_open ON cases (property_id, open_time DESC, id DESC);
CREATE INDEX cases_property_status ON cases (property_id, status);
CREATE INDEX cases_guest_category ON cases (guest_id, category, open_time) WHERE guest_id IS NOT NULL;
CREATE INDEX cases_incident ON cases (incident_id) WHERE incident_id IS NOT NULL;
CREATE INDEX cases_search ON cases USING GIN (search);

-- Append-only history. The full event is kept as the encoded CaseEvent message.
CREATE TABLE case_events (
    id              UUID PRIMARY KEY,
    case_id         UUID        NOT NULL REFERENCES cases (id),
    sequence        BIGINT      NOT NULL,
    kind            SMALLINT    NOT NULL,
    event_time      TIMESTAMPTZ NOT NULL,
    idempotency_key TEXT,
    note            TEXT        NOT NULL DEFAULT '',
    event           BYTEA       NOT NULL,
    UNIQUE (case_id, sequence)
);
CREATE UNIQUE INDEX case_events_idempotency ON case_events (case_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Human case references per property and year: SH-BUND-2026-000123.
CREATE TABLE case_reference_counters (
    property_id TEXT NOT NULL,
    year        INT  NOT NULL,
    last_value  BIGINT NOT NULL,
    PRIMARY KEY (property_id, year)
);

CREATE TABLE incidents (
    id              UUID PRIMARY KEY,
    property_id     TEXT        NOT NULL,
    title           TEXT        NOT NULL,
    description     TEXT        NOT NULL DEFAULT '',
    category        SMALLINT    NOT NULL,
    department      SMALLINT    NOT NULL,
    start_time      TIMESTAMPTZ,
    resolve_time    TIMESTAMPTZ,
    idempotency_key TEXT,
    created_by      TEXT        NOT NULL,
    create_time     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX incidents_idempotency ON incidents (property_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX incidents_property ON incidents (property_id, create_time DESC, id DESC);

ALTER TABLE cases ADD CONSTRAINT cases_incident_fk FOREIGN KEY (incident_id) REFERENCES incidents (id);
ALTER TABLE feedback ADD CONSTRAINT feedback_case_fk FOREIGN KEY (case_id) REFERENCES cases (id);
