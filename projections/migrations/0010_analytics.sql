-- The analytics model of the ticket life (docs/analytics.md).
--
-- ticket_history has one row per ticket event: the ticket as that event
-- left it (status and the status before it, priority, channel, team,
-- assignee, customer, tags), who did it through which channel (actor,
-- event_channel, rule_id), the message it added (author, internal), and
-- for SLA events the policy and its targets (ticket.sla_policy_applied)
-- or the target and due time (ticket.sla_warning / ticket.sla_breached).
-- ReplacingMergeTree(version): a redelivered event collapses under FINAL.
--
-- ticket_service holds the service facts of each ticket (first response,
-- solve times, reopens, SLA policy, targets, warnings and breaches, the
-- latest status/team/assignee) as aggregate states, kept by the view
-- ticket_service_mv from every insert into ticket_history; read it with the
-- -Merge functions grouped by ticket. Every aggregate is one a repeated row
-- cannot change (min, max, argMax, uniqExact of versions).
--
-- automation_firings holds the ticket events automation rules caused,
-- sorted by rule, kept by the view automation_firings_mv.
--
-- Backfill: the rows of an existing deployment's past events can only come
-- from folding the event store (each row needs the ticket's state before
-- and after its event, which no existing table keeps per event), so after
-- this migration run
--
--   helpdeskflow projections rebuild --tables ticket_history
--
-- which rebuilds ticket_history (with tickets, whose fold it needs) from
-- the event store, fills ticket_service and automation_firings from it and
-- swaps them in (README "Analytics", docs/analytics.md). Until then the
-- tables hold the events projected since the migration; the projector
-- writes ticket_history from the start.
CREATE TABLE IF NOT EXISTS ticket_history (
    workspace_id   UUID,
    ticket_id      UUID,
    version        UInt64,
    event_type     String,
    occurred_at    DateTime,
    occurred_at_ms Int64,
    created_at_ms  Int64,
    actor_type     String,
    actor_id       String,
    event_channel  String,
    rule_id        String,
    request_id     String,
    causation_id   String,
    status         String,
    status_before  String,
    priority       String,
    type           String,
    channel        String,
    team           String,
    assignee_id    String,
    customer_id    UUID,
    tags           Array(String),
    message_author String,
    message_internal UInt8,
    sla_policy_id  String,
    sla_policy_name String,
    sla_first_response_minutes UInt32,
    sla_resolution_minutes UInt32,
    sla_target     String,
    sla_due_at_ms  Int64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, ticket_id, version);

CREATE TABLE IF NOT EXISTS ticket_service (
    workspace_id UUID,
    ticket_id UUID,
    ticket_created_at_ms AggregateFunction(min, Int64),
    last_version AggregateFunction(max, UInt64),
    current_status AggregateFunction(argMax, String, UInt64),
    current_priority AggregateFunction(argMax, String, UInt64),
    ticket_channel AggregateFunction(argMax, String, UInt64),
    current_team AggregateFunction(argMax, String, UInt64),
    current_assignee_id AggregateFunction(argMax, String, UInt64),
    current_customer_id AggregateFunction(argMax, String, UInt64),
    current_tags AggregateFunction(argMax, Array(String), UInt64),
    first_response_at_ms AggregateFunction(minIf, Int64, UInt8),
    first_solved_at_ms AggregateFunction(minIf, Int64, UInt8),
    solved_at_ms AggregateFunction(maxIf, Int64, UInt8),
    reopens AggregateFunction(uniqExactIf, UInt64, UInt8),
    policy_id AggregateFunction(argMaxIf, String, UInt64, UInt8),
    policy_name AggregateFunction(argMaxIf, String, UInt64, UInt8),
    first_response_target_minutes AggregateFunction(argMaxIf, UInt32, UInt64, UInt8),
    resolution_target_minutes AggregateFunction(argMaxIf, UInt32, UInt64, UInt8),
    first_response_warned_at_ms AggregateFunction(minIf, Int64, UInt8),
    first_response_breached_at_ms AggregateFunction(minIf, Int64, UInt8),
    resolution_warned_at_ms AggregateFunction(minIf, Int64, UInt8),
    resolution_breached_at_ms AggregateFunction(minIf, Int64, UInt8),
    automation_events AggregateFunction(uniqExactIf, UInt64, UInt8)
) ENGINE = AggregatingMergeTree()
ORDER BY (workspace_id, ticket_id);

CREATE TABLE IF NOT EXISTS automation_firings (
    workspace_id   UUID,
    rule_id        String,
    ticket_id      UUID,
    version        UInt64,
    event_type     String,
    occurred_at    DateTime,
    occurred_at_ms Int64,
    request_id     String,
    causation_id   String
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (workspace_id, rule_id, ticket_id, version);

CREATE MATERIALIZED VIEW IF NOT EXISTS ticket_service_mv TO ticket_service AS SELECT workspace_id, ticket_id, minState(created_at_ms) AS ticket_created_at_ms, maxState(version) AS last_version, argMaxState(status, version) AS current_status, argMaxState(priority, version) AS current_priority, argMaxState(channel, version) AS ticket_channel, argMaxState(team, version) AS current_team, argMaxState(assignee_id, version) AS current_assignee_id, argMaxState(toString(customer_id), version) AS current_customer_id, argMaxState(tags, version) AS current_tags, minIfState(occurred_at_ms, event_type = 'ticket.message_added' AND message_author = 'agent' AND message_internal = 0) AS first_response_at_ms, minIfState(occurred_at_ms, status = 'solved' AND status_before != 'solved') AS first_solved_at_ms, maxIfState(occurred_at_ms, status = 'solved' AND status_before != 'solved') AS solved_at_ms, uniqExactIfState(version, status = 'open' AND status_before = 'solved') AS reopens, argMaxIfState(sla_policy_id, version, event_type = 'ticket.sla_policy_applied') AS policy_id, argMaxIfState(sla_policy_name, version, event_type = 'ticket.sla_policy_applied') AS policy_name, argMaxIfState(sla_first_response_minutes, version, event_type = 'ticket.sla_policy_applied') AS first_response_target_minutes, argMaxIfState(sla_resolution_minutes, version, event_type = 'ticket.sla_policy_applied') AS resolution_target_minutes, minIfState(occurred_at_ms, event_type = 'ticket.sla_warning' AND sla_target = 'first_response') AS first_response_warned_at_ms, minIfState(occurred_at_ms, event_type = 'ticket.sla_breached' AND sla_target = 'first_response') AS first_response_breached_at_ms, minIfState(occurred_at_ms, event_type = 'ticket.sla_warning' AND sla_target = 'resolution') AS resolution_warned_at_ms, minIfState(occurred_at_ms, event_type = 'ticket.sla_breached' AND sla_target = 'resolution') AS resolution_breached_at_ms, uniqExactIfState(version, rule_id != '') AS automation_events FROM ticket_history GROUP BY workspace_id, ticket_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS automation_firings_mv TO automation_firings AS SELECT workspace_id, rule_id, ticket_id, version, event_type, occurred_at, occurred_at_ms, request_id, causation_id FROM ticket_history WHERE rule_id != '';

