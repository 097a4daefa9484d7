-- Issue 13: pre-arrival care of VIP and frequent guests (src/care/). One row per stay whose
-- booking planned care: the arrival its tasks are timed for and the stay event (its outbox
-- sequence) that last planned them, so a redelivered or repeated booking plans once, a
-- moved arrival re-times the tasks and a cancellation cancels them. The tasks themselves
-- are rows of `tasks` (kind VIP_CARE, idempotency key 'care:<stay>:<task>:<version>').
-- No guest id: the row is deleted when the guest of its tasks is erased.
CREATE TABLE care_plans (
    stay_id      text PRIMARY KEY,
    property_id  text NOT NULL,
    arrival_date date NOT NULL,
    version      bigint NOT NULL,
    -- 1 active, 2 cancelled.
    state        smallint NOT NULL,
    update_time  timestamptz NOT NULL
);
