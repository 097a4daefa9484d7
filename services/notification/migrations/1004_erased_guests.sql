-- Guests erased here (GuestErased, issue 11): the id named by the event and the profile it
-- lived on (its survivor, when it had been merged). A WeChat interaction of one of them
-- delivered after the erasure (a late or re-ordered FeedbackReceived) records nothing, so
-- an erased guest's trace does not come back. Holds ids and times only.
CREATE TABLE erased_guests (
    guest_id    text PRIMARY KEY,
    erase_time  timestamptz NOT NULL DEFAULT now()
);
