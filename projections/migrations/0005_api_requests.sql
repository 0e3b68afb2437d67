-- api_requests is the request log: one row per API request, authenticated or
-- not, tied to the key used (guide 2.1). The RequestLogProjector writes it
-- from the helpdeskflow.api-requests topic (group helpdeskflow-request-log).
--
-- time is the arrival time in whole seconds (UTC) and time_ms its millisecond
-- part (0-999), because ClickHouse 18.16 has no DateTime64: order by
-- (time, time_ms) for millisecond order. latency_us is microseconds.
-- workspace_id and key_id are the nil UUID when no valid key was presented;
-- key_prefix then still tells which well-formed key was tried. Optional texts
-- (key_prefix, user_agent, error_code, rate_limit_category) use '' for "none".
--
-- Delivery is at least once: a redelivered record has the same sorting key
-- (workspace_id, key_id, time, request_id) and collapses under FINAL.
--
-- Unlike the other tables, this one cannot be rebuilt from Postgres (the log
-- lives only in Kafka and here), so Truncate leaves it alone.
--
-- Example: what one key did in the last seven days, oldest first:
--
--   SELECT time, method, route, path, status, latency_us, client_ip
--   FROM api_requests FINAL
--   WHERE key_id = toUUID('…') AND time >= now() - INTERVAL 7 DAY
--   ORDER BY time, time_ms
CREATE TABLE IF NOT EXISTS api_requests (
    time                DateTime,
    time_ms             UInt16,
    request_id          String,
    workspace_id        UUID,
    key_id              UUID,
    key_prefix          String,
    method              String,
    route               String,
    path                String,
    status              UInt16,
    latency_us          UInt64,
    client_ip           String,
    user_agent          String,
    error_code          String,
    rate_limit_category String
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (workspace_id, key_id, time, request_id)
