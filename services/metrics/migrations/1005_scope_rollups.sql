-- Issue 9 (P5): GetKpis for a region or the chain summed every property's daily rows at
-- read time; a year of a 300-property chain is ~11M rows, seconds per call. These are the
-- same sums kept per scope (the chain and each region), per local day and per month, added
-- to in the same statement as the property's row, so a year of the chain reads ~2,000 rows.

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

-- The chain's properties and their regions as the scope rows were summed (the chain
-- configuration at the last start). Empty here: the first start fills it and sums any
-- rollups already present; a start whose configuration differs sums them again.
CREATE TABLE scope_members (
    property_id  text PRIMARY KEY,
    region_id    text NOT NULL
);
