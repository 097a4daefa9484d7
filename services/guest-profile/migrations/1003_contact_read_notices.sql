-- When each contact-read alert was sent to staff through notification (leak_watch.rs); NULL
-- until notification accepted it, so an alert raised while notification is down is sent
-- on a later round.
ALTER TABLE contact_read_alerts ADD COLUMN notify_time TIMESTAMPTZ;
