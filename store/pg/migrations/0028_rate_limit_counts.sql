-- Rate limit state the API processes share (http/ratelimit, through
-- store/ratelimits): each process keeps its counts in memory and exchanges
-- them here every 100 ms. UNLOGGED: the rows live for a rate limit window
-- at most and are rewritten continuously, so they are not worth the WAL; a
-- crash of Postgres empties the tables, which forgets at most one window of
-- counts (each process still has its own).
--
-- One row per bucket (key, category, window), slot and process (node): a
-- process writes only its own rows, so exchanges never wait on each other's
-- row locks. slot is the slot index of width ceil(window/60) since the
-- Unix epoch; expires_ns is when the slot stops counting (ns since the
-- epoch), after which any process deletes it.
CREATE UNLOGGED TABLE rate_limit_counts (
    key_id     uuid   NOT NULL,
    category   text   NOT NULL,
    window_ns  bigint NOT NULL,
    slot       bigint NOT NULL,
    node       uuid   NOT NULL,
    count      bigint NOT NULL,
    expires_ns bigint NOT NULL,
    PRIMARY KEY (key_id, category, window_ns, slot, node)
);
CREATE INDEX rate_limit_counts_expiry ON rate_limit_counts (expires_ns);

-- Each process's current run of denials per workspace, for the workspace's
-- soft throttle.
CREATE UNLOGGED TABLE rate_limit_streaks (
    workspace_id   uuid   NOT NULL,
    node           uuid   NOT NULL,
    start_ns       bigint NOT NULL,
    last_denial_ns bigint NOT NULL,
    expires_ns     bigint NOT NULL,
    PRIMARY KEY (workspace_id, node)
);
CREATE INDEX rate_limit_streaks_expiry ON rate_limit_streaks (expires_ns);
