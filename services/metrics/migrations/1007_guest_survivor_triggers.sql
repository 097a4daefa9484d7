-- Rows of a merged-away guest written after the merge (checked-out stays and quotes) are
-- re-pointed to the survivor as they are written, by these triggers. The guest directory
-- they call (guest_merges, guest_survivor) is libs/db/guest_directory_migrations, shared
-- with the other services that follow merges. OR REPLACE: a schema migrated by the
-- release whose 1006_guest_merges.sql created these triggers takes this one without change.

-- Only writes that set guest_id (a survey's contact time alone never runs it).
CREATE OR REPLACE TRIGGER stay_state_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON stay_state
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
CREATE OR REPLACE TRIGGER quotes_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON quotes
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
