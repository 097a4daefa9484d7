-- Commit order without serialising every commit. Migration 2 gave each event its position
-- at commit, from a deferred trigger that held the schema's outbox lock through the WAL
-- flush: every transaction that wrote an event committed one after another, which bounded
-- a service's writes at one commit per flush (measured: the feedback row plus its event ran
-- at 830-910 tps under pgbench c8, the row alone at 1.9-4.2k).
--
-- Now rows are written without a position and the relay's sequencer (src/sequencer.rs)
-- gives every committed, unpositioned row the next positions, in id order, under the same
-- lock but in its own short transaction. A transaction still open is invisible to it, so
-- its rows are positioned later, after everything positioned so far: the cursor on
-- position still steps over nothing. Id order keeps each aggregate's order: a writer of an
-- existing aggregate takes the aggregate's lock before it draws its id, and that lock is
-- released only after the previous writer's commit is visible, so a sequencer that sees
-- the later row sees the earlier one, with the smaller id.
DROP TRIGGER outbox_assign_position ON outbox;
DROP FUNCTION outbox_assign_position();
DROP SEQUENCE outbox_position_seq;
CREATE INDEX outbox_unpositioned ON outbox (id) WHERE position IS NULL;
-- Rows are written unpositioned now: index only the positioned ones, so a write pays one
-- index entry fewer (the relay's `position > $1` and the sequencer's max() imply NOT NULL).
DROP INDEX outbox_position;
CREATE UNIQUE INDEX outbox_position ON outbox (position) WHERE position IS NOT NULL;
