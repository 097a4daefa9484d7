-- Issue 4, parts 2-6: what the scheduler learns from events (cases, answered surveys), the
-- SLA clocks of cases and the hops they caused, and follow-up tasks for staff.

-- A timer the scheduler keeps for a clock or a task names it, so the worker knows what
-- its firing means.
ALTER TABLE timers ADD COLUMN clock_id uuid;
ALTER TABLE timers ADD COLUMN task_id uuid;
CREATE INDEX timers_guest ON timers (guest_id, purpose, fire_time) WHERE guest_id <> '';
CREATE INDEX timers_stay ON timers (stay_id) WHERE stay_id <> '';
CREATE INDEX timers_case ON timers (case_id) WHERE case_id <> '';

-- The latest facts of each case, as feedback-intake's events told them. Events may arrive
-- out of order: only a higher `version` replaces the facts.
CREATE TABLE cases (
    case_id          text PRIMARY KEY,
    property_id      text NOT NULL,
    reference        text NOT NULL,
    guest_id         text NOT NULL DEFAULT '',
    stay_id          text NOT NULL DEFAULT '',
    -- feedback.v1.CaseStatus, EscalationTier, common.v1.Urgency, Department.
    status           smallint NOT NULL,
    tier             smallint NOT NULL,
    urgency          smallint NOT NULL,
    department       smallint NOT NULL,
    assignee_id      text NOT NULL DEFAULT '',
    version          bigint NOT NULL,
    update_time      timestamptz NOT NULL
);

-- One clock per case, kind and (for escalation steps) tier.
CREATE TABLE case_clocks (
    id               uuid PRIMARY KEY,
    case_id          text NOT NULL REFERENCES cases (case_id),
    -- followup.v1.ClockKind: 1 first response, 2 resolution, 3 escalation step.
    kind             smallint NOT NULL,
    -- The tier that owns the case until this deadline (escalation steps; 0 otherwise).
    tier             smallint NOT NULL DEFAULT 0,
    property_id      text NOT NULL,
    urgency          smallint NOT NULL,
    -- followup.v1.ClockState: 1 running, 2 paused, 3 met, 4 breached, 7 cancelled.
    state            smallint NOT NULL,
    start_time       timestamptz NOT NULL,
    due_time         timestamptz NOT NULL,
    target_ms        bigint NOT NULL,
    warn_time        timestamptz,
    warned           boolean NOT NULL DEFAULT false,
    stop_time        timestamptz,
    breach_time      timestamptz,
    paused_since     timestamptz,
    paused_ms        bigint NOT NULL DEFAULT 0,
    update_time      timestamptz NOT NULL,
    UNIQUE (case_id, kind, tier)
);
CREATE INDEX case_clocks_property_due ON case_clocks (property_id, due_time);

-- Every move up the ladder the scheduler made: the audit trail of automatic escalation.
CREATE TABLE escalation_hops (
    idempotency_key  text PRIMARY KEY,
    case_id          text NOT NULL,
    property_id      text NOT NULL,
    from_tier        smallint NOT NULL,
    to_tier          smallint NOT NULL,
    clock_id         uuid NOT NULL,
    hop_time         timestamptz NOT NULL,
    confirmed        boolean NOT NULL,
    message_id       text NOT NULL DEFAULT ''
);
CREATE INDEX escalation_hops_case ON escalation_hops (case_id, hop_time);

-- Stays whose survey was answered (possibly before their check-out event arrived): no
-- reminder is sent for them.
CREATE TABLE answered_stays (
    stay_id          text PRIMARY KEY,
    answer_time      timestamptz NOT NULL
);

-- Follow-up tasks for staff.
CREATE TABLE tasks (
    id               uuid PRIMARY KEY,
    idempotency_key  text UNIQUE,
    -- followup.v1.TaskKind, TaskStatus, TaskOutcome; common.v1 Department, Urgency,
    -- ContactChannel.
    kind             smallint NOT NULL,
    property_id      text NOT NULL,
    guest_id         text NOT NULL DEFAULT '',
    stay_id          text NOT NULL DEFAULT '',
    case_id          text NOT NULL DEFAULT '',
    title            text NOT NULL,
    instructions     text NOT NULL DEFAULT '',
    department       smallint NOT NULL DEFAULT 0,
    assignee_id      text NOT NULL DEFAULT '',
    urgency          smallint NOT NULL DEFAULT 0,
    due_time         timestamptz NOT NULL,
    status           smallint NOT NULL,
    outcome          smallint NOT NULL DEFAULT 0,
    outcome_note     text NOT NULL DEFAULT '',
    contact_channel  smallint NOT NULL DEFAULT 0,
    complete_time    timestamptz,
    completed_by     text NOT NULL DEFAULT '',
    miss_time        timestamptz,
    late             boolean NOT NULL DEFAULT false,
    timer_id         uuid,
    created_by       text NOT NULL,
    create_time      timestamptz NOT NULL,
    update_time      timestamptz NOT NULL
);
CREATE INDEX tasks_property_due ON tasks (property_id, due_time, id);
CREATE INDEX tasks_case ON tasks (case_id) WHERE case_id <> '';
CREATE INDEX tasks_stay ON tasks (stay_id) WHERE stay_id <> '';
