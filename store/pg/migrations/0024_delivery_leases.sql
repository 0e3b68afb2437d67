-- A claim leases a delivery in leased_until, a column no index covers,
-- instead of moving next_attempt_at (which the claim index orders by): so
-- the claim's update changes no indexed column and Postgres can make it a
-- heap-only (HOT) update, with no new entries in the table's five
-- indexes. A claim skips deliveries whose lease has not run out; a
-- finished or released attempt clears the lease. Leases taken before this
-- migration are in next_attempt_at and keep working as they are (the
-- delivery is due when they end).
ALTER TABLE webhook_deliveries ADD COLUMN leased_until timestamptz;
-- Room on every page for the updated versions a HOT update needs (pages
-- written from now on).
ALTER TABLE webhook_deliveries SET (fillfactor = 70);

-- The attempt log's foreign key checked, and share-locked, the delivery
-- row for every attempt recorded. Attempts are written only for deliveries
-- just claimed, and deliveries are never deleted.
ALTER TABLE webhook_attempts DROP CONSTRAINT webhook_attempts_delivery_id_fkey;
