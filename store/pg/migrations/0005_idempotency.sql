-- Idempotency keys (eventstore.IdempotencyKeys): per workspace, the
-- outcome of the first POST or PATCH made with an Idempotency-Key, kept at
-- least 24 hours so a retry replays it instead of running again.
--
-- A row is 'running' while its request runs, owned by lease_token; a
-- 'running' row older than the lease (60 s) was abandoned (its process
-- died) and the same request may take it over with a new token. 'done'
-- rows hold the response to replay. Rows older than the retention are
-- ignored (replaced by the next request with their key) and deleted in
-- small batches as new keys arrive.
CREATE TABLE idempotency_keys (
    workspace_id     uuid        NOT NULL,
    key              text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of what makes the request this request: method, path,
    -- query, If-Match and the raw body.
    request_hash     bytea       NOT NULL,
    state            text        NOT NULL CHECK (state IN ('running', 'done')),
    lease_token      uuid        NOT NULL,
    -- Set when done: the response to replay. Only the headers worth
    -- replaying are kept (Content-Type, ETag, Location, Cache-Control).
    status           int,
    response_headers jsonb,
    response_body    bytea,
    -- The body is encrypted with a key derived from the API key that made
    -- the request (responses marked Cache-Control: no-store, such as a new
    -- API key's secret), so the database never holds the secret in clear.
    sealed           boolean     NOT NULL DEFAULT false,
    -- When the current run started: the lease and the retention count
    -- from here.
    created_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    PRIMARY KEY (workspace_id, key),
    CHECK (state = 'running' OR (status IS NOT NULL AND response_body IS NOT NULL))
);
-- For deleting expired rows, oldest first.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
