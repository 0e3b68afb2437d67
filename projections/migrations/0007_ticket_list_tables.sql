-- tickets_by_created and tickets_by_customer are the list read model behind
-- GET /v1/tickets: the same rows as tickets (one per ticket version,
-- highest version wins under FINAL), sorted for newest-first reads. tickets
-- is sorted by ticket id, so a newest-first page of it merges the whole
-- workspace under FINAL; ClickHouse cannot change a table's sorting key,
-- hence new tables.
--
-- tickets_by_created is sorted by (workspace_id, created_at_ms, ticket_id).
-- created_at_ms never changes for a ticket, so every version of a ticket has
-- the same key and FINAL still collapses them (and they sit in the same
-- partition, by month of creation); a narrow created_at_ms range is a
-- narrow slice of the table. FINAL reads every part that holds rows of the
-- range, so the monthly partitions keep the newest tickets (most reads) in
-- the few parts of the current month, and older months merge into one part
-- each. The small index granularity keeps the read of single rows by their
-- keys short.
--
-- tickets_by_customer is sorted by (workspace_id, customer_id,
-- created_at_ms, ticket_id), so a customer's tickets are one short slice.
-- A customer merge moves tickets: their new versions sort under the new
-- customer, and their older versions stay under the old one, where FINAL
-- does not see the newer ones. Whoever reads a customer's slice must drop
-- a ticket whose version there is not its latest (in tickets_by_created).
--
-- Both are fed by the materialized views below rather than by the
-- projector inserting into each: every insert into tickets (the
-- projector's, a projector of an older release still running during a
-- rolling upgrade, the bench's seeding) lands in them too, and the backfill
-- below cannot miss rows written between it and the projector starting to
-- write the new tables. An insert into tickets that fails in a view fails as
-- a whole and the projector retries it; a duplicate row is harmless (same
-- version).
--
-- Example: the newest 25 open tickets of a workspace created in the last day:
--
--   SELECT ticket_id, subject, created_at_ms
--   FROM tickets_by_created FINAL
--   WHERE workspace_id = toUUID('…')
--     AND created_at_ms >= toInt64(toUnixTimestamp(now() - INTERVAL 1 DAY)) * 1000
--     AND status = 'open'
--   ORDER BY created_at_ms DESC, ticket_id DESC
--   LIMIT 25
CREATE TABLE IF NOT EXISTS tickets_by_created (
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
PARTITION BY toYYYYMM(toDateTime(intDiv(created_at_ms, 1000)))
ORDER BY (workspace_id, created_at_ms, ticket_id)
SETTINGS index_granularity = 1024;

CREATE TABLE IF NOT EXISTS tickets_by_customer (
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
ORDER BY (workspace_id, customer_id, created_at_ms, ticket_id)
SETTINGS index_granularity = 256;

-- The columns are named, not *, so a column added to tickets later does not
-- break inserts into tickets: add it here by re-creating the views.
CREATE MATERIALIZED VIEW IF NOT EXISTS tickets_by_created_mv TO tickets_by_created AS
SELECT workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id,
       assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms
FROM tickets;

CREATE MATERIALIZED VIEW IF NOT EXISTS tickets_by_customer_mv TO tickets_by_customer AS
SELECT workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id,
       assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms
FROM tickets;

-- An insert into tickets that began before the views existed does not pass
-- through them; wait (up to 3 s, twice) while inserts into a tickets table run,
-- so that such an insert has committed before the backfill reads tickets.
-- Inserts that begin later pass through the views.
SELECT sleep(if((SELECT count() FROM system.processes WHERE lower(query) LIKE 'insert into %tickets%') > 0, 3, 0));

SELECT sleep(if((SELECT count() FROM system.processes WHERE lower(query) LIKE 'insert into %tickets%') > 0, 3, 0));

-- Backfill from tickets, the latest version of each ticket only (so that
-- no old version lands under a customer the ticket has left). Rows the
-- views wrote meanwhile, or a re-run of this migration, leave duplicates
-- that collapse under FINAL and in merges.
INSERT INTO tickets_by_created (workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id,
       assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms)
SELECT workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id,
       assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms
FROM tickets FINAL;

INSERT INTO tickets_by_customer (workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id,
       assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms)
SELECT workspace_id, ticket_id, version, subject, status, priority, type, channel, tags, customer_id,
       assignee_id, team, external_id, custom_fields, message_count, created_at_ms, updated_at_ms
FROM tickets FINAL;
