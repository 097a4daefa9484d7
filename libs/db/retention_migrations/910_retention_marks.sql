-- Where each retention sweep has got to (guestloop_db::retention, issue 11): per kind of
-- data and scope (a property, or '*' for chain-wide data), the time and key of the last
-- record it has anonymised or deleted. A round goes on from here, so it is resumable and
-- each record is visited once. Shared by the services with personal data to age out and
-- applied in each one's schema; idempotent.
CREATE TABLE IF NOT EXISTS retention_marks (
    task        text        NOT NULL,
    scope       text        NOT NULL,
    last_time   timestamptz,
    last_key    text        NOT NULL DEFAULT '',
    update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task, scope)
);
