-- Issue 5: incremental rollups per property and local day, and the little per-entity state
-- the consumer needs to count each thing once whatever order its events arrive in. KPI
-- queries read `rollups` only; nothing here is raw history.

-- One row per property, local day, measure and breakdown ('' = the whole; 'channel:3',
-- 'category:7', 'department:2', 'csi_dimension:4', 'bucket:900'). Rates use n (the
-- denominator) and num; means use n, sum and sum_sq (for a confidence interval).
CREATE TABLE rollups (
    property_id  text NOT NULL,
    day          date NOT NULL,
    measure      text NOT NULL,
    breakdown    text NOT NULL DEFAULT '',
    n            bigint NOT NULL DEFAULT 0,
    num          bigint NOT NULL DEFAULT 0,
    sum          double precision NOT NULL DEFAULT 0,
    sum_sq       double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (property_id, measure, breakdown, day)
);

-- Feedback seen (received and/or responded to), so a response is counted once, on the
-- receipt's day, whichever event comes first.
CREATE TABLE feedback_state (
    feedback_id   text PRIMARY KEY,
    property_id   text NOT NULL DEFAULT '',
    receive_day   date,
    channel       smallint NOT NULL DEFAULT 0,
    received      boolean NOT NULL DEFAULT false,
    responded     boolean NOT NULL DEFAULT false,
    counted       boolean NOT NULL DEFAULT false
);

-- Cases: opened, resolved and SLA clocks each counted once, on the day the case opened.
CREATE TABLE case_state (
    case_id            text PRIMARY KEY,
    property_id        text NOT NULL,
    open_day           date NOT NULL,
    open_time          timestamptz NOT NULL,
    channel            smallint NOT NULL DEFAULT 0,
    opened_counted     boolean NOT NULL DEFAULT false,
    resolved_counted   boolean NOT NULL DEFAULT false,
    fr_within          boolean,
    res_within         boolean,
    compliance_counted boolean NOT NULL DEFAULT false
);

-- Checked-out stays, for the 48 h satisfaction contact and VIP returns.
CREATE TABLE stay_state (
    stay_id        text PRIMARY KEY,
    property_id    text NOT NULL DEFAULT '',
    guest_id       text NOT NULL DEFAULT '',
    checkout_time  timestamptz,
    -- When the satisfaction survey went out (possibly known before the check-out).
    contact_time   timestamptz,
    counted        boolean NOT NULL DEFAULT false
);
CREATE INDEX stay_state_guest ON stay_state (guest_id, checkout_time);

-- KPI alerts: one active alert per KPI and scope at most.
CREATE TABLE alerts (
    id             uuid PRIMARY KEY,
    kpi            smallint NOT NULL,
    scope_level    smallint NOT NULL,
    scope_id       text NOT NULL,
    window_days    integer NOT NULL,
    state          smallint NOT NULL,
    -- Encoded metrics.v1.KpiValue.
    raise_value    bytea NOT NULL,
    raise_time     timestamptz NOT NULL,
    clear_value    bytea,
    clear_time     timestamptz,
    -- The notifications sent for it; empty until sent (a failed send is retried).
    raise_message_id text NOT NULL DEFAULT '',
    clear_message_id text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX alerts_one_active ON alerts (kpi, scope_level, scope_id) WHERE state = 1;
CREATE INDEX alerts_raise ON alerts (raise_time DESC, id);
