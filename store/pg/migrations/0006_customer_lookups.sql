-- Which tickets belong to which customer: maintained in the transactions
-- that create tickets and merge customers, so a customer read lists its
-- tickets without scanning events.
CREATE TABLE customer_tickets (
    workspace_id uuid NOT NULL,
    customer_id  uuid NOT NULL,
    ticket_id    uuid NOT NULL,
    PRIMARY KEY (customer_id, ticket_id)
);

-- Linked third-party profiles: (provider, external_id) names at most one
-- customer per workspace.
CREATE TABLE customer_profiles (
    workspace_id uuid NOT NULL,
    provider     text NOT NULL,
    external_id  text NOT NULL,
    customer_id  uuid NOT NULL,
    PRIMARY KEY (workspace_id, provider, external_id)
);
CREATE INDEX customer_profiles_customer ON customer_profiles (customer_id);
