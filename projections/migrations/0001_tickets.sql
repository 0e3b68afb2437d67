-- tickets is the list read model behind GET /v1/tickets: one row per ticket
-- version. ReplacingMergeTree(version) keeps the highest version per
-- (workspace_id, ticket_id), so a replayed or older event never wins; query
-- it with FINAL. Optional text fields (assignee_id, team, external_id) use ''
-- for "not set"; custom_fields is a JSON object text.
CREATE TABLE IF NOT EXISTS tickets (
    workspace_id  UUID,
    ticket_id     UUID,
    version       UInt64,
    subject       String,
    status        String,
    priority      String,
    type          String,
    channel       String,
    tags          Array(String),
    customer_id   UUID,
    assignee_id   String,
    team          String,
    external_id   String,
    custom_fields String,
    message_count UInt32,
    created_at_ms Int64,
    updated_at_ms Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, ticket_id)
