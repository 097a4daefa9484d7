-- Rows of a merged-away guest written after the merge (messages and the WeChat 48-hour window) are
-- re-pointed to the survivor as they are written, by these triggers. The guest directory
-- they call (guest_merges, guest_survivor) is libs/db/guest_directory_migrations, shared
-- with the other services that follow merges. OR REPLACE: a schema migrated by the
-- release whose 1003_guest_merges.sql created these triggers takes this one without change.

-- Only writes that set guest_id: delivery's status changes never run it. A BEFORE INSERT
-- trigger runs before ON CONFLICT is decided, so an interaction of the duplicate recorded
-- after the merge meets the survivor's row and moves it forward (GREATEST).
CREATE OR REPLACE TRIGGER messages_guest_survivor BEFORE INSERT OR UPDATE OF guest_id ON messages
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
CREATE OR REPLACE TRIGGER wechat_interactions_guest_survivor
    BEFORE INSERT OR UPDATE OF guest_id ON wechat_interactions
    FOR EACH ROW WHEN (NEW.guest_id <> '') EXECUTE FUNCTION guest_survivor_trigger();
