-- guest-profile's GuestMerged (issue 11): the scheduler remembers each duplicate -> survivor
-- so that everything naming the duplicate (timers, tasks, case facts) belongs to the
-- survivor, whatever the order: rows present when the merge is applied are re-pointed by
-- the consumer (ingest.rs, guest_merge.rs); rows written LATER (a check-out of the
-- duplicate's stay delivered after the merge, a case event, an API call, or a previous-
-- release pod during a rolling upgrade) are re-pointed by the triggers below as they are
-- written. So "one survey per guest per N days" and every other per-guest look-up sees one
-- guest. Additive only: the previous release never reads the table, and its writes pass
-- through the triggers like ours.

-- A duplicate is merged once (guest-profile resolves later merges to the survivor), so the
-- duplicate is the key; chains (d -> s -> t) are followed at read time.
CREATE TABLE guest_merges (
    duplicate_guest_id text PRIMARY KEY,
    survivor_guest_id  text        NOT NULL,
    merge_time         timestamptz NOT NULL DEFAULT now()
);

-- Where `id`'s merges lead (itself when never merged; '' stays ''). Takes this schema's
-- guest-directory lock SHARED to the end of the transaction first; the consumer takes it
-- EXCLUSIVE before it records a merge and re-points rows. So a writer's row is either
-- committed before the consumer re-points (and is re-pointed) or the consumer committed
-- first (and this look-up sees the merge). VOLATILE so that, in READ COMMITTED, the look-up
-- takes a snapshot after the lock is granted. Sixteen hops at most: guest-profile never
-- merges into a merged-away profile, so a longer chain would be a loop.
CREATE FUNCTION guest_survivor(id text) RETURNS text
    LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    current text := id;
    next text;
BEGIN
    IF id IS NULL OR id = '' THEN
        RETURN id;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(
        hashtextextended('guestloop.guest_directory:' || current_schema(), 0));
    FOR hop IN 1..16 LOOP
        SELECT survivor_guest_id INTO next FROM guest_merges WHERE duplicate_guest_id = current;
        EXIT WHEN NOT FOUND;
        current := next;
    END LOOP;
    RETURN current;
END
$$;

CREATE FUNCTION guest_survivor_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.guest_id := guest_survivor(NEW.guest_id);
    RETURN NEW;
END
$$;

-- Only writes that set guest_id: claims and state changes of timers (the hot path) never
-- run it.
CREATE TRIGGER timers_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON timers
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
CREATE TRIGGER tasks_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON tasks
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
CREATE TRIGGER cases_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON cases
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
