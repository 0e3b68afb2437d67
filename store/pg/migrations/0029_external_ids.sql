-- Integrators' own ids of tickets and customers: an external id names at
-- most one ticket and at most one customer per workspace. Creates claim it
-- in their transaction (lookups.Tx.ClaimExternalID): of two concurrent
-- creates with one external id, the second waits for the first and then
-- finds the id taken. GET /v1/tickets?external_id= and
-- GET /v1/customers?external_id= read it (lookups.Store.ByExternalID).
CREATE TABLE external_ids (
    workspace_id uuid NOT NULL,
    stream_type  text NOT NULL,
    external_id  text NOT NULL,
    stream_id    uuid NOT NULL,
    PRIMARY KEY (workspace_id, stream_type, external_id)
);
-- A merge points the source customer's external id at the target.
CREATE INDEX external_ids_stream ON external_ids (stream_id);

-- Tickets created before this migration: each external id names the
-- oldest ticket created with it (before, several tickets could share one;
-- the later ones stay readable by id but are not found by the external id).
INSERT INTO external_ids (workspace_id, stream_type, external_id, stream_id)
SELECT workspace_id, 'ticket', data->>'external_id', stream_id
FROM events
WHERE type = 'ticket.created' AND data->>'external_id' IS NOT NULL
ORDER BY tx_id, seq
ON CONFLICT DO NOTHING;
