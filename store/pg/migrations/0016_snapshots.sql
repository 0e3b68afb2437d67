-- Snapshots: a stream's folded state at one version, so that a command
-- folds only the events after it instead of the whole stream. One row per
-- stream (the newest replaces the older); written by the command whose
-- append leaves SnapshotEvery or more events after the last snapshot, in
-- the same transaction. A snapshot is only a shortcut: deleting any or all
-- rows changes no answer, only makes loads fold more. format is
-- helpdeskflow.SnapshotFormat when written; loads ignore other formats.
-- state is the JSON of the state (bytea: stored and read back byte for
-- byte, without a jsonb parse); inspect it with convert_from(state, 'UTF8').
CREATE TABLE snapshots (
    stream_id    uuid PRIMARY KEY,
    workspace_id uuid        NOT NULL,
    stream_type  text        NOT NULL,
    version      bigint      NOT NULL CHECK (version >= 1),
    format       int         NOT NULL,
    state        bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
