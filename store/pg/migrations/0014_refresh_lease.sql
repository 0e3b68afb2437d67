-- OAuth token refreshes run outside any transaction (an open transaction
-- holding the connection's row lock across the HTTP call would hold back
-- the commit horizon, and with it the relay and the change feed of every
-- workspace). A refresh takes a lease instead: a short UPDATE sets
-- refresh_lease_token/refresh_lease_until where no live lease is, and the
-- lease runs out by itself when a process dies mid-refresh.
-- token_version counts the times tokens were stored: a refresh writes its
-- outcome only over the version it started from, so a refresher that lost
-- its lease cannot overwrite newer tokens, nor take a refresh token that
-- another process already used and rotated for a revoked grant.
ALTER TABLE integration_connections
    ADD COLUMN token_version       bigint NOT NULL DEFAULT 0,
    ADD COLUMN refresh_lease_token uuid,
    ADD COLUMN refresh_lease_until timestamptz;
