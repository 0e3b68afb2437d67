-- Webhook subscriptions. Secrets are sealed (secretbox) with the workspace
-- and webhook ids as additional data; a deleted webhook keeps its row (and
-- its delivery log) with deleted_at set.
CREATE TABLE webhooks (
    id                    uuid PRIMARY KEY,
    workspace_id          uuid NOT NULL,
    url                   text NOT NULL,
    event_types           text[] NOT NULL,
    active                boolean NOT NULL,
    secret                bytea NOT NULL,
    previous_secret       bytea,
    previous_secret_until timestamptz,
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL,
    deleted_at            timestamptz
);
CREATE INDEX webhooks_workspace ON webhooks (workspace_id, created_at, id) WHERE deleted_at IS NULL;

-- One row per (webhook, event), written before the first attempt, so a
-- redelivered Kafka record never sends twice. Workers claim due rows with
-- FOR UPDATE SKIP LOCKED and lease them by moving next_attempt_at to the
-- lease's end; a crashed worker's lease runs out and another retries.
CREATE TABLE webhook_deliveries (
    id              uuid PRIMARY KEY,
    webhook_id      uuid NOT NULL,
    workspace_id    uuid NOT NULL,
    event_id        uuid NOT NULL,
    event_type      text NOT NULL,
    stream_id       uuid NOT NULL,
    stream_version  bigint NOT NULL,
    payload         bytea NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        int NOT NULL DEFAULT 0,
    max_attempts    int NOT NULL,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (webhook_id, stream_id, stream_version) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (webhook_id, status, created_at DESC, id);

CREATE TABLE webhook_attempts (
    delivery_id   uuid NOT NULL REFERENCES webhook_deliveries (id),
    attempt       int NOT NULL,
    url           text NOT NULL,
    status_code   int,
    response_body text NOT NULL DEFAULT '',
    error_class   text NOT NULL DEFAULT '',
    error         text NOT NULL DEFAULT '',
    started_at    timestamptz NOT NULL,
    duration_ms   double precision NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
