-- Bookkeeping of `helpdeskflow projections rebuild` (projections/rebuild.go).
--
-- projection_rebuilds is the rebuild's own checkpoint: one row per
-- checkpoint (the newest, by written_ns, counts): which tables it rebuilds,
-- its phase ('building' into the __v2 tables, 'swapping' once caught up,
-- 'done' after the swap and the final catch-up) and the position in commit
-- order up to which every event's rows are in the new tables. A rebuild
-- killed at any point continues from it when run again.
CREATE TABLE IF NOT EXISTS projection_rebuilds (
    name       String,
    tables     String,
    phase      String,
    tx_id      UInt64,
    seq        Int64,
    events     UInt64,
    written_ns UInt64
) ENGINE = ReplacingMergeTree(written_ns)
ORDER BY name;

-- projection_versions records which version of its definition in code
-- (projections/definitions.go) each table was last built with by a rebuild;
-- a table without a row is at version 1, as the migrations built it. Merges
-- keep the highest version per table.
CREATE TABLE IF NOT EXISTS projection_versions (
    table_name String,
    version    UInt32,
    built_at   DateTime
) ENGINE = ReplacingMergeTree(version)
ORDER BY table_name
