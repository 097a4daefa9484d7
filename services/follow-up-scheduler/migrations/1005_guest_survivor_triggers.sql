-- Rows of a merged-away guest written after the merge (timers, tasks and case facts) are
-- re-pointed to the survivor as they are written, by these triggers. The guest directory
-- they call (guest_merges, guest_survivor) is libs/db/guest_directory_migrations, shared
-- with the other services that follow merges. OR REPLACE: a schema migrated by the
-- release whose 1003_guest_merges.sql created these triggers takes this one without change.

-- Only writes that set guest_id: claims and state changes of timers (the hot path) never
-- run it.
CREATE OR REPLACE TRIGGER timers_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON timers
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
CREATE OR REPLACE TRIGGER tasks_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON tasks
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
CREATE OR REPLACE TRIGGER cases_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON cases
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
