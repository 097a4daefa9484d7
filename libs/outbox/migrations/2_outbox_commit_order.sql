-- The relay reads the outbox in COMMIT order. `id` comes from a sequence when the row is
-- written, so a transaction that commits later can hold a smaller id than one already
-- delivered, and a cursor on id would step over it for good (seen: one survey of 210 never
-- reached metrics). `position` is assigned at commit instead, by a deferred trigger that
-- takes this schema's outbox lock first, so positions grow in commit order and a cursor on
-- them misses nothing. The lock is held only while committing, and the trigger touches
-- nothing but the committing transaction's own rows, so it cannot deadlock.
ALTER TABLE outbox ADD COLUMN position bigint;
CREATE SEQUENCE outbox_position_seq;
SELECT setval('outbox_position_seq', (SELECT COALESCE(MAX(id), 0) FROM outbox) + 1, false);
UPDATE outbox SET position = id;
CREATE UNIQUE INDEX outbox_position ON outbox (position);

CREATE FUNCTION outbox_assign_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('guestloop.outbox:' || TG_TABLE_SCHEMA, 0));
    EXECUTE format('UPDATE %I.outbox SET position = nextval(%L) WHERE id = $1',
                   TG_TABLE_SCHEMA, TG_TABLE_SCHEMA || '.outbox_position_seq')
        USING NEW.id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER outbox_assign_position AFTER INSERT ON outbox
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION outbox_assign_position();
COMMENT ON COLUMN outbox_cursor.last_delivered_id IS 'The position (not the id) of the last event the subscriber acknowledged.';
