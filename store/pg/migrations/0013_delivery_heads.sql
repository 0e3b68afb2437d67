-- Only claimable deliveries are claim candidates. head marks the pending
-- delivery with the lowest stream_version of its (webhook, stream): the
-- only one of that pair a worker may attempt, so each endpoint sees a
-- stream's events in order. Deliveries held back behind it are not in the
-- claim index at all, however early they were due, so they can never crowd
-- out work that is claimable (before, a few hundred of them filled the
-- window the claim looked at and nothing was claimed again).
--
-- Every change to a webhook's pending deliveries (enqueue, finish,
-- redeliver, delete) runs with its webhooks row locked, and sets head on
-- the pair's lowest pending delivery before it commits; a delivery that
-- leaves pending loses head.
--
-- cancelled: a delivery of a deleted webhook that was still pending (or
-- recorded after the deletion). It is never attempted and blocks nothing.
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_status_check;
ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check
    CHECK (status IN ('pending', 'succeeded', 'failed', 'cancelled'));
ALTER TABLE webhook_deliveries ADD COLUMN head boolean NOT NULL DEFAULT false;

UPDATE webhook_deliveries d SET status = 'cancelled', next_attempt_at = NULL, updated_at = now()
    FROM webhooks w
    WHERE w.id = d.webhook_id AND w.deleted_at IS NOT NULL AND d.status = 'pending';
UPDATE webhook_deliveries d SET head = true
    WHERE d.status = 'pending' AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
        WHERE e.webhook_id = d.webhook_id AND e.stream_id = d.stream_id AND e.status = 'pending'
            AND e.stream_version < d.stream_version);

-- The claim walks the webhooks that have a head (a skip scan of this
-- index) and takes the earliest due heads of each.
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_ready ON webhook_deliveries (webhook_id, next_attempt_at)
    WHERE status = 'pending' AND head;
