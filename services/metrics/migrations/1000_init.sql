-- metrics's own tables arrive with its behaviour (issue 5). Until then its schema holds the
-- shared outbox and inbox (libs/outbox) so its events and deliveries have a home.
SELECT 1;
