-- The guest directory of a service that follows guest-profile's GuestMerged (issue 11):
-- each duplicate -> survivor, and the look-up every writer of a guest id goes through, so
-- that everything naming a merged-away guest belongs to the survivor whatever the order
-- events arrive in. Rows present when the merge is applied are re-pointed by the consumer
-- (guestloop_db::guest_directory); rows written LATER (an event of the duplicate delivered
-- after the merge, an API call, a previous-release pod during a rolling upgrade) are
-- re-pointed by each service's own triggers on its tables, which call
-- guest_survivor_trigger(). Shared by follow-up-scheduler, notification and metrics, and
-- applied in each one's schema. Idempotent (IF NOT EXISTS, OR REPLACE): schemas migrated
-- by a release where each service carried its own copy of these statements (its
-- 1003/1006_guest_merges) take it without change.

-- A duplicate is merged once (guest-profile resolves later merges to the survivor), so the
-- duplicate is the key; chains (d -> s -> t) are followed at read time.
CREATE TABLE IF NOT EXISTS guest_merges (
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
CREATE OR REPLACE FUNCTION guest_survivor(id text) RETURNS text
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

CREATE OR REPLACE FUNCTION guest_survivor_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    NEW.guest_id := guest_survivor(NEW.guest_id);
    RETURN NEW;
END
$$;
