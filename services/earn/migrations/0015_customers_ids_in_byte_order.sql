-- The customers projection's ids compare byte by byte (collation "C"), as the accounts',
-- orders' and ledger's do since migration 0010. Each order.paid batch looks up the customers
-- of its orders that have no first order yet: compared in two collations, that join could not
-- use the key (shop_id, customer_id) nor hash the pairs, and PostgreSQL sorted both sides
-- through strcoll (the database's locale) instead; a batch of 2,000 orders took twice as long.
-- Rebuilds the table's indexes (the table itself is not rewritten). The previous release's
-- statements name the collation where they compare these ids, so they still run.
ALTER TABLE customers ALTER COLUMN customer_id TYPE text COLLATE "C";
