-- OTA review replies (issue 13): one row per review once somebody has drafted or posted its
-- public reply (a review without one shows a suggestion computed on read). The due time is
-- fixed when the row is first written, from the site's deadline then in force. The text is
-- the hotel's public answer; erasure and retention of the review blank it with the review.
CREATE TABLE review_replies (
    feedback_id    uuid PRIMARY KEY,
    property_id    text NOT NULL,
    site           smallint NOT NULL,
    state          smallint NOT NULL,
    needs_approval boolean NOT NULL,
    due_time       timestamptz NOT NULL,
    text           text NOT NULL,
    drafted_by     text,
    draft_time     timestamptz,
    approved_by    text,
    approve_time   timestamptz,
    posted_by      text,
    post_time      timestamptz,
    update_time    timestamptz NOT NULL DEFAULT now()
);

-- A property's replies by state and deadline (the reply queue).
CREATE INDEX review_replies_property_due ON review_replies (property_id, state, due_time);
