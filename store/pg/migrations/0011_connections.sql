-- OAuth (and, later, IMAP) connections of a workspace to outside services.
-- Tokens are sealed (secretbox: key id in each ciphertext, the workspace
-- and connection ids as additional data). A refresh takes the row lock, so
-- at most one runs per connection across processes, and stores a rotated
-- refresh token in the same statement as the new access token.
CREATE TABLE integration_connections (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL,
    provider         text NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'active', 'token_expired', 'needs_revalidation', 'disabled')),
    account          text NOT NULL DEFAULT '',
    access_token     bytea,
    refresh_token    bytea,
    token_expiry     timestamptz,
    scopes           text NOT NULL DEFAULT '',
    details          jsonb NOT NULL DEFAULT '{}',
    sync_state       jsonb NOT NULL DEFAULT '{}',
    last_sync_at     timestamptz,
    last_error       text NOT NULL DEFAULT '',
    last_error_class text NOT NULL DEFAULT '',
    last_error_at    timestamptz,
    next_retry_at    timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);
CREATE INDEX integration_connections_workspace ON integration_connections (workspace_id, created_at, id);
