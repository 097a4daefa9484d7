-- timer_firings is an append-only record of executions, written in the same transaction
-- that finishes the timer (which that transaction already holds locked). Its foreign key
-- checked each row against timers again and took a KEY SHARE lock on the timer: a
-- per-row trigger and index probe on the firing path (guestloop-bench P4), guarding a
-- reference nothing can break — timers are never deleted while their firings are kept.
ALTER TABLE timer_firings DROP CONSTRAINT IF EXISTS timer_firings_timer_id_fkey;
