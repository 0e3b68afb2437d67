-- Indexes for the retention job (dispatch/retention), which deletes what
-- is no longer needed oldest first, a bounded batch per statement.
--
-- Finished webhook deliveries (succeeded, failed, cancelled) by creation
-- time. created_at never changes and status is already in
-- webhook_deliveries_log, so this index leaves the claim's update a
-- heap-only (HOT) update, as migration 0024 wants: an index on updated_at,
-- which every claim sets, would not. The job deletes deliveries created
-- and last updated before the cutoff, so one finished late (retries, a
-- redelivery) stays until its last outcome is old enough.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries (created_at) WHERE status <> 'pending';

-- Mail records that made no ticket (skipped mail): only the import's
-- duplicate check reads them, and only within the sync window.
CREATE INDEX mail_messages_skipped ON mail_messages (created_at) WHERE ticket_id IS NULL;
