-- Retention of case notes by each note's own time (issue 11): the sweep walks a property's
-- case events in time order, so each event carries its case's property (a case never
-- changes property). Filled for existing rows here and, for new ones, by a trigger, so
-- writers (this release's and the previous one's during a rolling upgrade) need not know.
ALTER TABLE case_events ADD COLUMN property_id text;
UPDATE case_events e SET property_id = c.property_id FROM cases c WHERE c.id = e.case_id;

CREATE FUNCTION case_event_property() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.property_id IS NULL THEN
        SELECT property_id INTO NEW.property_id FROM cases WHERE id = NEW.case_id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER case_event_property BEFORE INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION case_event_property();

CREATE INDEX case_events_property_time ON case_events (property_id, event_time, id);
