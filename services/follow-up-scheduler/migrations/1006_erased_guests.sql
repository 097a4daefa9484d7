-- Guests erased here (GuestErased, issue 11): the id the event named and the profile it
-- lived on, written in the transaction that cancelled their timers and blanked their tasks.
-- guest-profile asks which erasures are applied (GetGuestErasures) to follow an erasure
-- request to completion. Holds ids and times only.
CREATE TABLE erased_guests (
    guest_id    text PRIMARY KEY,
    erase_time  timestamptz NOT NULL DEFAULT now()
);
