-- The improvement board (plan-do-check-act). One open item per scope and category at most
-- (the partial unique index), so racing proposers, or a proposal and a manager, make one.
CREATE TABLE improvement_items (
    id               uuid PRIMARY KEY,
    state            smallint NOT NULL,
    scope_level      smallint NOT NULL,
    scope_id         text NOT NULL,
    category         smallint NOT NULL,
    department       smallint NOT NULL DEFAULT 0,
    tag              text NOT NULL DEFAULT '',
    title            text NOT NULL,
    owner_staff_id   text NOT NULL DEFAULT '',
    plan             text NOT NULL DEFAULT '',
    due_time         timestamptz,
    -- The local day the item opened; the baseline is the `baseline_days` before it.
    open_day         date NOT NULL,
    baseline         bytea NOT NULL,
    target_rate      double precision NOT NULL,
    -- The local day DO began (the current rate counts from it) and the day CHECK judged.
    do_day           date,
    check_day        date,
    verdict          smallint NOT NULL DEFAULT 0,
    verdict_value    bytea,
    proposal_reason  text NOT NULL DEFAULT '',
    idempotency_key  text,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL,
    -- The scheduler's overdue timer matches the item (scheduled while PLAN/DO/CHECK with a
    -- due time, cancelled after); false until the scheduler confirmed the last change.
    timer_synced     boolean NOT NULL DEFAULT false,
    timer_attempts   integer NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX improvement_items_open ON improvement_items (scope_level, scope_id, category)
    WHERE state NOT IN (6, 7);
CREATE UNIQUE INDEX improvement_items_key ON improvement_items (scope_level, scope_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX improvement_items_scope ON improvement_items (scope_id, state);
CREATE INDEX improvement_items_unsynced ON improvement_items (update_time) WHERE NOT timer_synced;

CREATE TABLE improvement_steps (
    item_id    uuid NOT NULL REFERENCES improvement_items (id),
    step_time  timestamptz NOT NULL,
    from_state smallint NOT NULL,
    to_state   smallint NOT NULL,
    note       text NOT NULL DEFAULT '',
    actor      text NOT NULL
);
CREATE INDEX improvement_steps_item ON improvement_steps (item_id, step_time);

CREATE TABLE improvement_cases (
    item_id uuid NOT NULL REFERENCES improvement_items (id),
    case_id text NOT NULL,
    link_time timestamptz NOT NULL,
    PRIMARY KEY (item_id, case_id)
);
