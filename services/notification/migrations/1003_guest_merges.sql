-- guest-profile's GuestMerged (issue 11): notification remembers each duplicate ->
-- survivor so that the duplicate's messages and its WeChat 48-hour window belong to the
-- survivor, whatever the order: rows present when the merge is applied are moved by the
-- consumer (api/events.rs, guest_merge.rs); rows written LATER (a message asked for the
-- duplicate, a WeChat interaction of the duplicate delivered after the merge, a previous-
-- release pod during a rolling upgrade) are re-pointed by the triggers below as they are
-- written. Additive only: the previous release never reads the table, and its writes pass
-- through the triggers like ours. The table and function are the ones
-- guestloop_db::guest_directory expects (follow-up-scheduler defines the same).

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

-- Only writes that set guest_id: delivery's status changes never run it. A BEFORE INSERT
-- trigger runs before ON CONFLICT is decided, so an interaction of the duplicate recorded
-- after the merge meets the survivor's row and moves it forward (GREATEST).
CREATE TRIGGER messages_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON messages
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
CREATE TRIGGER wechat_interactions_guest_survivor
    BEFORE INSERT OR UPDATE OF guest_id ON wechat_interactions
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
