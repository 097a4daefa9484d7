-- Every message notification was asked to send, one per idempotency key, and its delivery
-- attempts. The full request is kept as the MessageSpec it arrived as (`spec`); the columns
-- beside it are what queries filter on and what delivery changes.
CREATE TABLE messages (
    id                  uuid PRIMARY KEY,
    idempotency_key     text NOT NULL UNIQUE,
    property_id         text NOT NULL,
    recipient_kind      smallint NOT NULL,
    guest_id            text NOT NULL DEFAULT '',
    case_id             text NOT NULL DEFAULT '',
    stay_id             text NOT NULL DEFAULT '',
    kind                smallint NOT NULL,
    urgency             smallint NOT NULL,
    status              smallint NOT NULL,
    spec                bytea NOT NULL,
    suppression_reason  smallint NOT NULL DEFAULT 0,
    channel             smallint NOT NULL DEFAULT 0,
    fallback_used       boolean NOT NULL DEFAULT false,
    language            text NOT NULL DEFAULT '',
    template_version    integer NOT NULL DEFAULT 0,
    provider            text NOT NULL DEFAULT '',
    provider_message_id text NOT NULL DEFAULT '',
    attempt_count       integer NOT NULL DEFAULT 0,
    -- Attempts up to this number do not count against the budget (RetryDeadLetter resets it).
    budget_start        integer NOT NULL DEFAULT 0,
    next_attempt_time   timestamptz,
    last_error          text NOT NULL DEFAULT '',
    -- A delivery worker's claim on the message (FOR UPDATE SKIP LOCKED + lease).
    lease_owner         text,
    lease_until         timestamptz,
    -- The worker that last worked on the message (support: which replica sent it).
    worked_by           text,
    create_time         timestamptz NOT NULL,
    send_time           timestamptz,
    deliver_time        timestamptz,
    update_time         timestamptz NOT NULL
);

CREATE INDEX messages_due ON messages (next_attempt_time) WHERE status IN (1, 2, 5);
CREATE INDEX messages_property ON messages (property_id, create_time DESC, id DESC);
CREATE INDEX messages_guest ON messages (guest_id, create_time DESC) WHERE guest_id <> '';
CREATE INDEX messages_case ON messages (case_id, create_time DESC) WHERE case_id <> '';
CREATE INDEX messages_stay ON messages (stay_id, create_time DESC) WHERE stay_id <> '';
CREATE INDEX messages_status ON messages (status, create_time DESC);
CREATE INDEX messages_provider_ref ON messages (provider, provider_message_id)
    WHERE provider_message_id <> '';

CREATE TABLE delivery_attempts (
    message_id   uuid NOT NULL REFERENCES messages (id),
    attempt      integer NOT NULL,
    channel      smallint NOT NULL,
    provider     text NOT NULL,
    attempt_time timestamptz NOT NULL,
    outcome      smallint NOT NULL,
    error        text NOT NULL DEFAULT '',
    latency_ms   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (message_id, attempt)
);
