-- Issue 5: staff named in feedback, praise and complaint counts per property and local day
-- (the monthly service star). Keyed by the staff id when the guest's mention was matched to
-- one, else by the name as written.
CREATE TABLE staff_mentions (
    property_id  text NOT NULL,
    day          date NOT NULL,
    staff_key    text NOT NULL,
    staff_id     text NOT NULL DEFAULT '',
    staff_name   text NOT NULL DEFAULT '',
    department   smallint NOT NULL DEFAULT 0,
    praise       bigint NOT NULL DEFAULT 0,
    complaint    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (property_id, staff_key, day)
);
