-- A merge or an email change moves a customer's email reservations by
-- customer_id (lookups.Tx.MoveCustomerLookups): without this index every
-- such command read the whole table. Creates and upserts find emails by
-- the primary key (workspace_id, email).
CREATE INDEX customer_emails_customer ON customer_emails (customer_id);
