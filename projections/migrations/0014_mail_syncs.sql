-- mail_syncs is one row per mailbox sync run as it ended: the service fact
-- the mail sync worker publishes on helpdeskflow.service-facts (hdf-fact
-- mail_sync), written here by the FactsProjector (group
-- helpdeskflow-service-facts). Postgres keeps only each mailbox's last run.
--
-- time is when the run ended (whole seconds, UTC; time_ms its millisecond
-- part). connection_id is the mailbox's integration connection, provider
-- google or outlook. imported counts messages that made or joined a ticket,
-- skipped those recorded without one (auto-replies, too large, refused),
-- duplicates those read again, failed those whose import failed (it ends the
-- run). outcome is succeeded, partial (deadline reached after some progress;
-- the next run continues at once) or failed, with error_class (timeout,
-- rate_limited, authentication_failed, …). duration_us is microseconds.
--
-- Sorting key (workspace_id, connection_id, time, run_id): one mailbox over
-- a time range is a contiguous range, and a redelivered record collapses
-- under FINAL. Monthly partitions, dropped by the retention job
-- (docs/retention.md).
--
-- It starts empty: runs before this migration are not published.
CREATE TABLE IF NOT EXISTS mail_syncs (
    time          DateTime,
    time_ms       UInt16,
    workspace_id  UUID,
    connection_id UUID,
    run_id        UUID,
    provider      String,
    imported      UInt32,
    skipped       UInt32,
    duplicates    UInt32,
    failed        UInt32,
    outcome       String,
    error_class   String,
    duration_us   UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(time)
ORDER BY (workspace_id, connection_id, time, run_id)
