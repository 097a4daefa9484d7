-- Leak reporting (issue 11). Who read a property's guests' contacts in a window is a scan
-- of the access log by time: a BRIN index (rows are written in time order, so it stays a
-- few pages and costs the hot read path next to nothing) finds the window's blocks.
CREATE INDEX access_log_time ON access_log USING BRIN (access_time);

-- A reader (not a service) that read more contacts in one window than
-- leak.reads_per_window: raised once per reader and window by the detector
-- (src/leak_watch.rs).
CREATE TABLE contact_read_alerts (
    id                UUID PRIMARY KEY,
    accessor          TEXT        NOT NULL,
    accessor_role     TEXT        NOT NULL,
    window_start_time TIMESTAMPTZ NOT NULL,
    reads             BIGINT      NOT NULL,
    guests            BIGINT      NOT NULL,
    raise_time        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (accessor, window_start_time)
);
