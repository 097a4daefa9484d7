-- Issue 9 (P5): GetKpis for a region or the chain summed every property's daily rows at
-- read time; a year of a 300-property chain is ~11M rows, seconds per call. These are the
-- same sums kept per scope (the chain and each region), per local day and per month, so a
-- year of the chain reads a few thousand rows (store/scopes.rs).

-- scope: 'chain' or 'region:<id>'. grain: 'd' a local day, 'm' the month starting on `day`.
CREATE TABLE scope_rollups (
    scope        text NOT NULL,
    grain        "char" NOT NULL,
    day          date NOT NULL,
    measure      text NOT NULL,
    breakdown    text NOT NULL DEFAULT '',
    n            bigint NOT NULL DEFAULT 0,
    num          bigint NOT NULL DEFAULT 0,
    sum          double precision NOT NULL DEFAULT 0,
    sum_sq       double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, grain, day, measure, breakdown)
);

-- Additions to the property rollups not yet folded into scope_rollups. Every event appends
-- here (an INSERT waits on no other writer, where updating the chain's row for the day in
-- every event's transaction would make all of them queue on that one row, and deadlock
-- when two take their measures in different orders); one replica at a time folds them in,
-- every second; readers add what is still here, so an answer is exact at once.
CREATE TABLE scope_deltas (
    id           bigserial PRIMARY KEY,
    region_id    text NOT NULL,
    day          date NOT NULL,
    measure      text NOT NULL,
    breakdown    text NOT NULL DEFAULT '',
    n            bigint NOT NULL DEFAULT 0,
    num          bigint NOT NULL DEFAULT 0,
    sum          double precision NOT NULL DEFAULT 0,
    sum_sq       double precision NOT NULL DEFAULT 0
);

-- The chain's properties and their regions as the scope rows were summed (the chain
-- configuration at the last start). Empty here: the first start fills it and sums any
-- rollups already present; a start whose configuration differs sums them again.
CREATE TABLE scope_members (
    property_id  text PRIMARY KEY,
    region_id    text NOT NULL
);
