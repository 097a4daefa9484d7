-- The guest's last WeChat interaction, for WeChat's 48-hour window: inside it a free-form
-- (customer-service) message may be sent, outside it only a template message. Fed by
-- FeedbackReceived events with channel WECHAT (EventIngestService); one row per guest,
-- only ever moved forward (GREATEST), deleted when the guest is erased. No contact data:
-- the guest id is pseudonymous.
CREATE TABLE wechat_interactions (
    guest_id              text PRIMARY KEY,
    last_interaction_time timestamptz NOT NULL,
    update_time           timestamptz NOT NULL DEFAULT now()
);
