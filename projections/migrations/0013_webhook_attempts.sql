-- webhook_attempts is one row per webhook delivery attempt as it ended: the
-- service fact the delivery worker publishes on helpdeskflow.service-facts
-- (hdf-fact webhook_attempt), written here by the FactsProjector (group
-- helpdeskflow-service-facts). Postgres keeps the attempts only for the
-- delivery log's retention; this table keeps their outcomes for analytics.
--
-- time is when the attempt started (whole seconds, UTC; time_ms its
-- millisecond part). endpoint is the webhook's URL without user information,
-- query and fragment. outcome is succeeded, retrying (failed, to be tried
-- again) or failed (failed, the delivery's last attempt); error_class the
-- sender's failure class (timeout, http_5xx, …) and status_code the HTTP
-- status (0: none arrived). duration_us is microseconds.
--
-- Sorting key (workspace_id, webhook_id, time, delivery_id, attempt): one
-- workspace's one endpoint over a time range is a contiguous range, and a
-- redelivered record has the same key and collapses under FINAL. Monthly
-- partitions, dropped by the retention job (docs/retention.md).
--
-- It starts empty: attempts made before this migration are not published
-- (ClickHouse is written by the projector only, from the topic).
CREATE TABLE IF NOT EXISTS webhook_attempts (
    time        DateTime,
    time_ms     UInt16,
    workspace_id UUID,
    webhook_id  UUID,
    endpoint    String,
    delivery_id UUID,
    attempt     UInt32,
    event_id    UUID,
    event_type  String,
    outcome     String,
    error_class String,
    status_code UInt16,
    duration_us UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (workspace_id, webhook_id, time, delivery_id, attempt)
