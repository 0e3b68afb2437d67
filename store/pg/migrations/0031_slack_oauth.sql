-- Slack installed through OAuth (POST /v1/integrations/slack/connect): the workspace's one Slack
-- integration names the OAuth connection its bot token came from; NULL for a bot token pasted
-- with PUT /v1/integrations/slack. Deleting that connection deletes the integration with it.
ALTER TABLE slack_integrations
    ADD COLUMN connection_id uuid REFERENCES integration_connections (id) ON DELETE CASCADE;
