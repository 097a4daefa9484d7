-- What feedback-intake learns from guest-profile's events GuestMerged and GuestErased
-- (issue 11), kept so that feedback arriving AFTER the event (another outbox, a retry, a
-- late import) is settled the same way: a merged-away id moves to its survivor, an erased
-- guest's words are replaced. Additive only: the previous release never reads these.

-- A duplicate is merged once (guest-profile resolves later merges to the survivor), so the
-- duplicate is the key; chains (d -> s -> t) are followed at read time.
CREATE TABLE guest_merges (
    duplicate_guest_id UUID PRIMARY KEY,
    survivor_guest_id  UUID        NOT NULL,
    merge_time         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE erased_guests (
    guest_id   UUID PRIMARY KEY,
    erase_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Which of `ids` the two tables above know (merged away or erased), for a writer about to
-- store links to those guests. It first takes this schema's guest-directory lock SHARED,
-- held to the end of the caller's transaction; the event consumer takes it EXCLUSIVE before
-- it settles a guest. So a writer's rows are either committed before the consumer looks
-- (and the consumer settles them) or the consumer committed before this look-up (and the
-- writer sees it here). VOLATILE on purpose: in READ COMMITTED its query then takes a fresh
-- snapshot after the lock is granted, even when called inside a larger statement (the
-- intake's one-statement batch insert), whose own snapshot may predate the consumer's
-- commit. Without any id it takes no lock: anonymous feedback never waits.
CREATE FUNCTION guest_directory_hits(ids UUID[]) RETURNS UUID[]
    LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF ids IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(ids) AS i WHERE i IS NOT NULL) THEN
        RETURN '{}';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(
        hashtextextended('guestloop.guest_directory:' || current_schema(), 0));
    RETURN ARRAY(
        SELECT DISTINCT i FROM unnest(ids) AS i
         WHERE i IS NOT NULL
           AND (EXISTS (SELECT 1 FROM guest_merges m WHERE m.duplicate_guest_id = i)
                OR EXISTS (SELECT 1 FROM erased_guests e WHERE e.guest_id = i)));
END
$$;
