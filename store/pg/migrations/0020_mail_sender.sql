-- The sender of each message read from a mailbox, so that later mail may
-- join a ticket by its thread only when its sender is the ticket's
-- customer or has written to the ticket before (commands.ImportMail).
-- Messages recorded earlier have '' and count for nobody: on their
-- tickets only the customer's address joins.
ALTER TABLE mail_messages ADD COLUMN from_address text NOT NULL DEFAULT '';
