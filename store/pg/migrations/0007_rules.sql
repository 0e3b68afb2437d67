-- The current definition of every automation rule and SLA policy, kept in
-- the transactions that append their events, so that commands read a
-- workspace's rules with one query instead of folding streams.
CREATE TABLE workspace_rules (
    id           uuid PRIMARY KEY,
    workspace_id uuid NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('automation', 'sla_policy')),
    version      bigint NOT NULL,
    definition   jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX workspace_rules_workspace ON workspace_rules (workspace_id, kind);

-- A counter per workspace bumped by every rule or policy change: commands
-- cache a workspace's compiled rules and reload them when it moves. Its
-- row lock also serializes a workspace's rule changes.
CREATE TABLE rule_set_versions (
    workspace_id uuid PRIMARY KEY,
    version      bigint NOT NULL
);
