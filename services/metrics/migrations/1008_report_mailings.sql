-- The daily report's deliveries: one row per recipient, scope and report day, inserted when
-- the recipient's local hour comes (ON CONFLICT DO NOTHING: racing replicas insert one) and
-- claimed FOR UPDATE SKIP LOCKED while it is sent, so one replica sends it; notification's
-- idempotency key (the row's identity) makes a send repeated after a crash the same message.
CREATE TABLE report_mailings (
    report_date date NOT NULL,
    staff_id text NOT NULL,
    scope_level smallint NOT NULL,
    scope_id text NOT NULL,
    language text NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    -- Empty until notification accepted it.
    message_id text NOT NULL DEFAULT '',
    send_time timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    -- How many times notification accepted it: 1 once sent, whatever the replicas.
    sends integer NOT NULL DEFAULT 0,
    -- The last refusal's gRPC code, for the operator; never the report.
    last_error text NOT NULL DEFAULT '',
    PRIMARY KEY (report_date, staff_id, scope_level, scope_id)
);
CREATE INDEX report_mailings_unsent ON report_mailings (report_date) WHERE message_id = '';
