-- audit_log has one row per event of every stream type: what changed (the
-- parallel arrays changed_fields / old_values / new_values, values as JSON
-- texts), who (actor_type, actor_id), through which channel, and the ids
-- that tie it to a request or an automation rule. A redelivered event has
-- the same (workspace_id, stream_id, version) and collapses under FINAL.
--
-- Example: the history of one ticket, oldest first, one row per changed field:
--
--   SELECT version, event_type, field, old, new, actor_type, actor_id,
--          channel, rule_id, request_id, occurred_at_ms
--   FROM audit_log FINAL
--   LEFT ARRAY JOIN changed_fields AS field, old_values AS old, new_values AS new
--   WHERE workspace_id = toUUID('…') AND stream_id = toUUID('…')
--   ORDER BY version, field
CREATE TABLE IF NOT EXISTS audit_log (
    workspace_id   UUID,
    stream_id      UUID,
    stream_type    String,
    version        UInt64,
    event_id       UUID,
    event_type     String,
    schema_version UInt16,
    actor_type     String,
    actor_id       String,
    channel        String,
    request_id     String,
    rule_id        String,
    causation_id   String,
    correlation_id String,
    changed_fields Array(String),
    old_values     Array(String),
    new_values     Array(String),
    data           String,
    occurred_at    DateTime,
    occurred_at_ms Int64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, stream_id, version)
