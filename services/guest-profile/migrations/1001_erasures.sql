-- Erasures followed to completion (issue 11). EraseGuest writes one erasure and one row per
-- service that must confirm it: guest-profile itself (done in the same transaction) and
-- every subscriber of this outbox, which received the GuestErased events. The tracker
-- (src/erasure_tracker.rs) asks each pending service which guests it has erased
-- (EventIngestService.GetGuestErasures) and marks the row done, or failed once it stays
-- silent past erasure.confirm_within.
CREATE TABLE erasures (
    id                UUID PRIMARY KEY,
    -- The guest EraseGuest resolved, and every profile erased with it (merged into it).
    guest_id          UUID        NOT NULL,
    erased_guest_ids  UUID[]      NOT NULL,
    -- The caller's stated reason (free text, kept as the data-protection record).
    reason            TEXT        NOT NULL,
    requested_by      TEXT        NOT NULL,
    requested_by_role TEXT        NOT NULL,
    request_time      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set when the last service confirmed.
    complete_time     TIMESTAMPTZ
);
CREATE INDEX erasures_guest ON erasures (guest_id, request_time DESC);
CREATE INDEX erasures_newest ON erasures (request_time DESC, id DESC);

CREATE TABLE erasure_services (
    erasure_id      UUID        NOT NULL REFERENCES erasures (id),
    -- The service's name, e.g. "feedback-intake".
    service         TEXT        NOT NULL,
    -- 1 pending, 2 done, 3 failed (ErasureState).
    state           SMALLINT    NOT NULL,
    -- The service's own time of erasure, once done.
    erase_time      TIMESTAMPTZ,
    last_check_time TIMESTAMPTZ,
    -- Why it is not done yet (the last error asking, or "not applied yet").
    detail          TEXT        NOT NULL DEFAULT '',
    -- When it went failed (the alert's start).
    fail_time       TIMESTAMPTZ,
    PRIMARY KEY (erasure_id, service)
);
-- The tracker's work list: only rows still waiting.
CREATE INDEX erasure_services_open ON erasure_services (service, erasure_id) WHERE state <> 2;
