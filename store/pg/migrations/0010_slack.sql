-- A workspace's Slack connection: the bot token sealed (secretbox, bound
-- to the workspace), the channel per notification kind, and whether Slack
-- still accepts the token.
CREATE TABLE slack_integrations (
    workspace_id uuid PRIMARY KEY,
    token        bytea NOT NULL,
    channels     jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('active', 'needs_revalidation')),
    team_id      text NOT NULL DEFAULT '',
    team         text NOT NULL DEFAULT '',
    last_error   text NOT NULL DEFAULT '',
    connected_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- Every Slack notification the dispatcher decided on: posted, skipped
-- (the integration needs revalidation) or failed. Unique per event and
-- kind, so a redelivered event never posts twice.
CREATE TABLE slack_notifications (
    event_id     uuid NOT NULL,
    kind         text NOT NULL,
    workspace_id uuid NOT NULL,
    ticket_id    uuid NOT NULL,
    channel      text NOT NULL,
    status       text NOT NULL CHECK (status IN ('posted', 'skipped', 'failed')),
    error        text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, kind)
);
CREATE INDEX slack_notifications_workspace ON slack_notifications (workspace_id, created_at DESC);
