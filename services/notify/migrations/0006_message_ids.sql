-- A message's public id, used in its notification_id and in the ids of its outcome events.
-- The bigint `id` restarts with a new database while the broker keeps loyalty.notifications;
-- a UUID stays unique across restores, recreated databases and deployments, so analytics
-- (which keeps each event id once) never mistakes one message's outcome for another's.
-- Rows already present each get their own UUID (the default is evaluated per row).
ALTER TABLE scheduled ADD COLUMN message_id uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX scheduled_message_id ON scheduled (message_id);
