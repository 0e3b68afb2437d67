-- customers holds the latest state of each customer, highest version wins.
-- custom_fields is a JSON object text.
CREATE TABLE IF NOT EXISTS customers (
    workspace_id  UUID,
    customer_id   UUID,
    version       UInt64,
    email         String,
    name          String,
    tags          Array(String),
    custom_fields String,
    created_at_ms Int64,
    updated_at_ms Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, customer_id)
