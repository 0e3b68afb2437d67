-- How far the projector has applied each partition of the events topic:
-- every event up to (tx_id, seq) in commit order that belongs on the
-- partition is in the read model. The projector adds a row per partition
-- after each batch's inserts succeeded (from the batch's events and the
-- relay's watermark records); the API reads the latest row of every
-- partition (LIMIT 1 BY, so rows not merged yet are fine) and takes the
-- smallest: the position every list reflects (read-your-writes).
-- partitions is the topic's partition count the relay last announced, so
-- a partition without a row yet holds everything back. Merges keep the
-- row with the highest tx_id per partition. An existing deployment needs
-- no backfill: the first batch after the upgrade fills it (an idle relay
-- publishes watermarks every few seconds).
CREATE TABLE IF NOT EXISTS projection_positions (
    kafka_partition UInt32,
    partitions      UInt32,
    tx_id           UInt64,
    seq             Int64,
    updated_at      DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree(tx_id)
ORDER BY kafka_partition
