-- ticket_messages has one row per message of a ticket's conversation (the
-- first one comes with ticket.created). version is the version of the event
-- that added the message; internal is 1 for internal notes.
CREATE TABLE IF NOT EXISTS ticket_messages (
    workspace_id  UUID,
    ticket_id     UUID,
    message_id    UUID,
    version       UInt64,
    author_type   String,
    body          String,
    body_text     String,
    internal      UInt8,
    created_at_ms Int64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (workspace_id, ticket_id, message_id)
