-- Mail sync of connected mailboxes (Gmail over its API, Outlook over
-- IMAP/SMTP).
--
-- A sync run leases its connection (sync_lease_until) so one process syncs
-- a mailbox at a time; the lease runs out when a process dies, and the
-- import below stays idempotent when two runs overlap anyway.
ALTER TABLE integration_connections
    ADD COLUMN next_sync_at     timestamptz,
    ADD COLUMN sync_lease_until timestamptz,
    ADD COLUMN sync_failures    integer NOT NULL DEFAULT 0;
CREATE INDEX integration_connections_due ON integration_connections (next_sync_at)
    WHERE status = 'active';

-- Every message imported from or sent through a mailbox, unique per
-- connection and external id (the Gmail message id; for IMAP the
-- Message-Id, which survives a UIDVALIDITY change), written in the same
-- transaction as the ticket or message it became, so a retried or
-- concurrent import never creates a second one. thread_id and
-- rfc_message_id tie later mail to the ticket. ticket_id is NULL for mail
-- that was read but made nothing (skipped, with why).
CREATE TABLE mail_messages (
    connection_id  uuid NOT NULL,
    external_id    text NOT NULL,
    workspace_id   uuid NOT NULL,
    ticket_id      uuid,
    message_id     uuid,
    direction      text NOT NULL CHECK (direction IN ('in', 'out')),
    thread_id      text NOT NULL DEFAULT '',
    rfc_message_id text NOT NULL DEFAULT '',
    skipped        text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    PRIMARY KEY (connection_id, external_id)
);
CREATE INDEX mail_messages_thread ON mail_messages (connection_id, thread_id) WHERE thread_id <> '';
CREATE INDEX mail_messages_rfc ON mail_messages (connection_id, rfc_message_id) WHERE rfc_message_id <> '';
CREATE INDEX mail_messages_ticket ON mail_messages (ticket_id, created_at) WHERE ticket_id IS NOT NULL;

-- Agent replies to mail tickets, queued in the reply's own transaction and
-- sent through the mailbox by the reply worker. A claim moves
-- next_attempt_at (the lease); a row found 'sending' again was interrupted
-- after the send may have happened, so the worker looks for it in the
-- mailbox before sending again.
CREATE TABLE mail_replies (
    event_id        uuid PRIMARY KEY,
    workspace_id    uuid NOT NULL,
    connection_id   uuid NOT NULL,
    ticket_id       uuid NOT NULL,
    message_id      uuid NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    rfc_message_id  text NOT NULL DEFAULT '',
    external_id     text NOT NULL DEFAULT '',
    last_error      text NOT NULL DEFAULT '',
    next_attempt_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);
CREATE INDEX mail_replies_due ON mail_replies (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX mail_replies_ticket ON mail_replies (ticket_id, created_at);
