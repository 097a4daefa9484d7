-- Durable timers (issue 4, part 1). One row per key: a replace raises `generation`, and
-- (id, generation) is the idempotency key of the action a firing runs. The action is kept
-- as the TimerAction it arrived as (protobuf bytes). Workers claim due timers with
-- `FOR UPDATE SKIP LOCKED` and a lease (lease_owner, lease_until); a RUNNING timer whose
-- lease ran out is claimable again.
CREATE TABLE timers (
    id                  uuid PRIMARY KEY,
    key                 text NOT NULL UNIQUE,
    purpose             smallint NOT NULL,
    property_id         text NOT NULL,
    guest_id            text NOT NULL DEFAULT '',
    stay_id             text NOT NULL DEFAULT '',
    case_id             text NOT NULL DEFAULT '',
    due_time            timestamptz NOT NULL,
    -- TimerState: 1 pending, 2 running, 3 fired, 4 skipped, 5 cancelled, 6 failed.
    state               smallint NOT NULL,
    -- LatePolicy: 1 fire, 2 skip, 3 escalate.
    late_policy         smallint NOT NULL,
    late_threshold_ms   bigint NOT NULL,
    action              bytea,
    generation          bigint NOT NULL DEFAULT 1,
    lease_owner         text,
    lease_until         timestamptz,
    attempt_count       integer NOT NULL DEFAULT 0,
    last_error          text NOT NULL DEFAULT '',
    fire_time           timestamptz,
    late                boolean NOT NULL DEFAULT false,
    -- What the late policy decided: '', 'fired_late', 'skipped_late', 'escalate_recorded'.
    late_decision       text NOT NULL DEFAULT '',
    skip_reason         text NOT NULL DEFAULT '',
    message_id          text NOT NULL DEFAULT '',
    -- The worker that fired, skipped or failed it.
    worked_by           text,
    create_time         timestamptz NOT NULL,
    update_time         timestamptz NOT NULL
);

CREATE INDEX timers_due ON timers (due_time) WHERE state IN (1, 2);
CREATE INDEX timers_property ON timers (property_id, due_time, id);

-- One row per execution of a timer's action (never deduplicated here, so a duplicate
-- firing would show): what was run, under which idempotency key, by which worker.
CREATE TABLE timer_firings (
    timer_id         uuid NOT NULL REFERENCES timers (id),
    generation       bigint NOT NULL,
    idempotency_key  text NOT NULL,
    action_kind      text NOT NULL,
    worker           text NOT NULL,
    fire_time        timestamptz NOT NULL
);

CREATE INDEX timer_firings_timer ON timer_firings (timer_id);
