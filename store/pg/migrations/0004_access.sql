-- API keys get an optional name (to tell keys apart during rotation).
ALTER TABLE api_keys ADD COLUMN name text NOT NULL DEFAULT '';
CREATE INDEX api_keys_workspace_created ON api_keys (workspace_id, created_at, id) WHERE revoked_at IS NULL;

-- Per-workspace access settings, maintained in the same transaction as the
-- workspace events that record their changes. A workspace without a row
-- has no IP blocklist and the default rate limits.
CREATE TABLE workspace_settings (
    workspace_id           uuid PRIMARY KEY REFERENCES workspaces (id),
    -- Canonical CIDRs (netip.Prefix strings); requests from them get 401.
    ip_blocklist           text[]      NOT NULL DEFAULT '{}',
    -- Overrides of the default rate limits:
    -- {"tickets.create": {"limit": 100, "window_seconds": 60}, ...}.
    rate_limits            jsonb       NOT NULL DEFAULT '{}',
    -- NULL: the default soft-throttle delay.
    soft_throttle_delay_ms integer,
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Access invalidation (eventstore.AccessCache). Every change to keys or
-- workspace settings takes a new generation after it commits and announces
-- it on channel helpdeskflow_access; each API process clears its cache and
-- records the generation it has seen here. The change returns once every
-- member has seen it or can no longer trust its cache (trusted_until passed).
CREATE SEQUENCE access_generation;
CREATE TABLE access_cache_members (
    process_id    uuid PRIMARY KEY,
    generation    bigint      NOT NULL,
    trusted_until timestamptz NOT NULL,
    heartbeat_at  timestamptz NOT NULL DEFAULT now()
);
