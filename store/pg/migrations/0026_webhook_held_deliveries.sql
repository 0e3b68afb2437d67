-- A paused webhook (active = false) collects its deliveries instead of
-- skipping its events: they are recorded pending and claims leave them
-- alone until it is resumed. Beyond a cap per webhook the oldest are
-- marked dropped (never attempted; a replay recovers their events), and
-- dropped_deliveries counts them.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled', 'dropped'));
ALTER TABLE webhooks ADD COLUMN dropped_deliveries bigint NOT NULL DEFAULT 0;
