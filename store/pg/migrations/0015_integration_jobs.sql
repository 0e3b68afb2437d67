-- Calls to outside services that events ask for (a Slack notification, a
-- customer lookup in one Shopify shop or Stripe account), queued by the
-- dispatcher's handlers and run by the job worker outside the Kafka
-- consume loop, so a slow or hung partner delays only its own jobs.
--
-- One row per (event, kind, connection), so a redelivered Kafka record
-- queues nothing twice. connection_id is the connection whose slots the
-- job takes: an OAuth connection's id, or for Slack the workspace id (a
-- workspace has one Slack integration). Workers claim due rows with FOR
-- UPDATE SKIP LOCKED and lease them by moving next_attempt_at to the
-- lease's end (attempts counts the claim); a crashed worker's lease runs
-- out and another runs the job again.
CREATE TABLE integration_jobs (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL,
    connection_id    uuid NOT NULL,
    kind             text NOT NULL,
    event_id         uuid NOT NULL,
    payload          jsonb NOT NULL,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    outcome          text NOT NULL DEFAULT '',
    attempts         int NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL,
    last_error       text NOT NULL DEFAULT '',
    last_error_class text NOT NULL DEFAULT '',
    last_error_at    timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    UNIQUE (event_id, kind, connection_id)
);
-- The claim walks the connections with pending jobs (a skip scan of this
-- index) and takes each one's earliest due jobs, so a connection with a
-- long backlog costs one index probe, never a scan of its backlog.
CREATE INDEX integration_jobs_due ON integration_jobs (connection_id, next_attempt_at) WHERE status = 'pending';
-- The latest failures of a connection, for GET /v1/integrations/{id}.
CREATE INDEX integration_jobs_failures ON integration_jobs (connection_id, last_error_at) WHERE last_error_at IS NOT NULL;
-- Finished jobs are purged after a retention period.
CREATE INDEX integration_jobs_finished ON integration_jobs (updated_at) WHERE status <> 'pending';
