-- Write-side lookup tables, maintained in the same transaction as the
-- events that justify them.
CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- API keys: only a SHA-256 hash of the key is stored.
CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    workspace_id uuid        NOT NULL REFERENCES workspaces (id),
    hash         bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL,
    role         text        NOT NULL CHECK (role IN ('admin', 'agent')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_workspace ON api_keys (workspace_id);

-- One customer per normalized email and workspace: the reservation that
-- makes concurrent upserts race-free.
CREATE TABLE customer_emails (
    workspace_id uuid NOT NULL,
    email        text NOT NULL,
    customer_id  uuid NOT NULL,
    PRIMARY KEY (workspace_id, email)
);

-- Events the dispatcher has handled, per consumer: the highest version of
-- each stream, so a redelivered event is recognised and skipped.
CREATE TABLE dispatch_progress (
    consumer  text   NOT NULL,
    stream_id uuid   NOT NULL,
    version   bigint NOT NULL,
    PRIMARY KEY (consumer, stream_id)
);
