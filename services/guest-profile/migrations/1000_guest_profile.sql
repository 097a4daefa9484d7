-- guest-profile's own tables, in the guest_profile schema (the role's search_path).

CREATE TABLE guests (
    id                 UUID PRIMARY KEY,
    home_property_id   TEXT        NOT NULL,
    given_name         TEXT,
    family_name        TEXT,
    email              TEXT,
    phone              TEXT,
    wechat_id          TEXT,
    language           TEXT,
    birthday           DATE,
    segment            SMALLINT    NOT NULL DEFAULT 0,
    tier               SMALLINT    NOT NULL DEFAULT 0,
    loyalty_number     TEXT,
    preferences        JSONB       NOT NULL DEFAULT '{}',
    special_needs      JSONB       NOT NULL DEFAULT '[]',
    notes              TEXT,
    completeness_score SMALLINT    NOT NULL DEFAULT 0,
    complete           BOOLEAN     NOT NULL DEFAULT FALSE,
    merged_into        UUID REFERENCES guests (id),
    erased             BOOLEAN     NOT NULL DEFAULT FALSE,
    erase_time         TIMESTAMPTZ,
    create_time        TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX guests_email ON guests (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX guests_phone ON guests (phone) WHERE phone IS NOT NULL;
CREATE INDEX guests_loyalty ON guests (loyalty_number) WHERE loyalty_number IS NOT NULL;
CREATE INDEX guests_family_name ON guests (lower(family_name) text_pattern_ops);
CREATE INDEX guests_given_name ON guests (lower(given_name) text_pattern_ops);
CREATE INDEX guests_home_property ON guests (home_property_id, create_time, id);
CREATE INDEX guests_page ON guests (create_time, id);

-- A client's retry of CreateGuest with the same key returns the first guest.
CREATE TABLE guest_idempotency (
    property_id     TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    guest_id        UUID NOT NULL REFERENCES guests (id),
    PRIMARY KEY (property_id, idempotency_key)
);

CREATE TABLE stays (
    id                 UUID PRIMARY KEY,
    guest_id           UUID        NOT NULL REFERENCES guests (id),
    property_id        TEXT        NOT NULL,
    pms_reservation_id TEXT        NOT NULL,
    status             SMALLINT    NOT NULL,
    arrival_date       DATE        NOT NULL,
    departure_date     DATE        NOT NULL,
    room_number        TEXT,
    rate_code          TEXT,
    booking_channel    TEXT,
    spend_currency     TEXT,
    spend_minor        BIGINT,
    checked_out_time   TIMESTAMPTZ,
    create_time        TIMESTAMPTZ NOT NULL DEFAULT now(),
    update_time        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (property_id, pms_reservation_id)
);
CREATE INDEX stays_guest ON stays (guest_id, create_time, id);
CREATE INDEX stays_property ON stays (property_id, guest_id);
CREATE INDEX stays_property_page ON stays (property_id, create_time, id);

-- Every consent decision, newest last; the current state is the latest per channel+purpose.
CREATE TABLE consents (
    id          BIGSERIAL PRIMARY KEY,
    guest_id    UUID        NOT NULL REFERENCES guests (id),
    channel     SMALLINT    NOT NULL,
    purpose     SMALLINT    NOT NULL,
    granted     BOOLEAN     NOT NULL,
    source      TEXT        NOT NULL,
    record_time TIMESTAMPTZ NOT NULL
);
CREATE INDEX consents_guest ON consents (guest_id, channel, purpose, id);

CREATE TABLE merges (
    id                 UUID PRIMARY KEY,
    survivor_guest_id  UUID        NOT NULL REFERENCES guests (id),
    duplicate_guest_id UUID        NOT NULL REFERENCES guests (id),
    reason             TEXT        NOT NULL,
    merged_by          TEXT        NOT NULL,
    merge_time         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX merges_survivor ON merges (survivor_guest_id);
CREATE INDEX merges_duplicate ON merges (duplicate_guest_id);

-- Who read a guest's contact data, when, through which call. Holds no contact data itself.
CREATE TABLE access_log (
    id            BIGSERIAL PRIMARY KEY,
    guest_id      UUID        NOT NULL,
    accessor      TEXT        NOT NULL,
    accessor_role TEXT        NOT NULL,
    rpc           TEXT        NOT NULL,
    access_time   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX access_log_guest ON access_log (guest_id, id);
