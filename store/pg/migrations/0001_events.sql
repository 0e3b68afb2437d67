-- Streams: one row per entity. The row is the lock a command takes
-- (SELECT ... FOR UPDATE) and holds the stream's current version.
CREATE TABLE streams (
    id           uuid PRIMARY KEY,
    workspace_id uuid        NOT NULL,
    type         text        NOT NULL,
    version      bigint      NOT NULL CHECK (version >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Events: the append-only log and the outbox the relay publishes from.
-- tx_id records the writing transaction so readers can page in commit order
-- below the commit horizon (see eventstore.Reader).
CREATE TABLE events (
    seq            bigserial   NOT NULL,
    tx_id          xid8        NOT NULL DEFAULT pg_current_xact_id(),
    id             uuid        NOT NULL UNIQUE,
    stream_id      uuid        NOT NULL REFERENCES streams (id),
    stream_type    text        NOT NULL,
    version        bigint      NOT NULL CHECK (version >= 1),
    workspace_id   uuid        NOT NULL,
    type           text        NOT NULL,
    schema_version int         NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tx_id, seq),
    UNIQUE (stream_id, version)
);
CREATE INDEX events_workspace_position ON events (workspace_id, tx_id, seq);

-- Where each relay (by name) has published up to, written only after the
-- broker acknowledged every event up to that position.
CREATE TABLE relay_checkpoints (
    name       text PRIMARY KEY,
    tx_id      xid8        NOT NULL,
    seq        bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
