-- Webhook replays (POST /v1/webhooks/{id}/replay): a range of a
-- workspace's events re-sent to one webhook as new deliveries. The range
-- is fixed when the replay is created: events after (after_tx, after_seq)
-- up to (upto_tx, upto_seq) in commit order (the last event below the
-- commit horizon then, or the to cursor), with occurred_at in
-- [from_time, to_time) when times were given, of event_types (NULL: all).
-- The dispatcher's replay worker leases an enqueueing replay and records
-- its deliveries in bounded batches, each its own transaction, moving
-- (cursor_tx, cursor_seq) after each.
CREATE TABLE webhook_replays (
    id            uuid PRIMARY KEY,
    webhook_id    uuid NOT NULL,
    workspace_id  uuid NOT NULL,
    range_from    text NOT NULL,
    range_to      text NOT NULL,
    event_types   text[],
    after_tx      bigint NOT NULL,
    after_seq     bigint NOT NULL,
    upto_tx       bigint NOT NULL,
    upto_seq      bigint NOT NULL,
    from_time     timestamptz,
    to_time       timestamptz,
    total         int NOT NULL,
    enqueued      int NOT NULL DEFAULT 0,
    cursor_tx     bigint NOT NULL,
    cursor_seq    bigint NOT NULL,
    status        text NOT NULL CHECK (status IN ('enqueueing', 'enqueued')),
    leased_until  timestamptz,
    created_at    timestamptz NOT NULL,
    enqueued_at   timestamptz
);
CREATE INDEX webhook_replays_enqueueing ON webhook_replays (created_at) WHERE status = 'enqueueing';

-- A replay's deliveries carry its id; an event has at most one live
-- delivery per webhook (a Kafka redelivery records nothing new) and one
-- per replay.
ALTER TABLE webhook_deliveries ADD COLUMN replay_id uuid;
ALTER TABLE webhook_deliveries DROP CONSTRAINT webhook_deliveries_webhook_id_event_id_key;
CREATE UNIQUE INDEX webhook_deliveries_live ON webhook_deliveries (webhook_id, event_id) WHERE replay_id IS NULL;
CREATE UNIQUE INDEX webhook_deliveries_replay ON webhook_deliveries (replay_id, event_id) WHERE replay_id IS NOT NULL;
