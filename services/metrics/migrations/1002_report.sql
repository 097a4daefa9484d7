-- Issue 5, the voice-of-customer report: the current facts of each case (open and late
-- cases per department at the end of any day), and guests' words for the top issues.

ALTER TABLE case_state
    ADD COLUMN version         bigint NOT NULL DEFAULT 0,
    ADD COLUMN reference       text NOT NULL DEFAULT '',
    ADD COLUMN category        smallint NOT NULL DEFAULT 0,
    ADD COLUMN department      smallint NOT NULL DEFAULT 0,
    ADD COLUMN risk_grade      smallint NOT NULL DEFAULT 0,
    ADD COLUMN status          smallint NOT NULL DEFAULT 0,
    ADD COLUMN tier            smallint NOT NULL DEFAULT 0,
    ADD COLUMN fr_due          timestamptz,
    ADD COLUMN res_due         timestamptz,
    ADD COLUMN ack_time        timestamptz,
    ADD COLUMN done_time       timestamptz;
CREATE INDEX case_state_open ON case_state (property_id, open_time);

-- Excerpts of feedback (already redacted of contact data by feedback-intake), for example
-- quotes. A guest's erasure removes theirs.
CREATE TABLE quotes (
    feedback_id   text PRIMARY KEY,
    property_id   text NOT NULL,
    guest_id      text NOT NULL DEFAULT '',
    day           date NOT NULL,
    receive_time  timestamptz NOT NULL,
    channel       smallint NOT NULL,
    category      smallint NOT NULL,
    sentiment     smallint NOT NULL,
    language      text NOT NULL,
    excerpt       text NOT NULL
);
CREATE INDEX quotes_day ON quotes (property_id, day, category, receive_time DESC);
CREATE INDEX quotes_guest ON quotes (guest_id) WHERE guest_id <> '';
