-- One row per open ticket that has an SLA policy: when the SLA timer
-- worker must next look at it (NULL: nothing is due until the ticket
-- changes, e.g. every target is fulfilled or paused). Written in the
-- transactions that change the ticket; a policy change sets due_at to now
-- for its tickets so that the worker re-evaluates them.
CREATE TABLE sla_timers (
    ticket_id    uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    policy_id    uuid NOT NULL,
    due_at       timestamptz
);
CREATE INDEX sla_timers_due ON sla_timers (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX sla_timers_policy ON sla_timers (workspace_id, policy_id);
