-- Guests erased at guest-profile: their words never enter the report, even when the
-- erasure arrives before their feedback (the two come from different outboxes).
CREATE TABLE erased_guests (
    guest_id    text PRIMARY KEY,
    erase_time  timestamptz NOT NULL DEFAULT now()
);
