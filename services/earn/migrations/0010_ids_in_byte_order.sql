-- Customer, order and entry ids are opaque: compare them byte by byte (collation "C") instead
-- of by the database's locale. Under a locale such as C.UTF-8 or en_US.UTF-8 every comparison
-- in these indexes went through strcoll, and each paid order inserts into five of them.
-- Rebuilds those indexes (the tables themselves are not rewritten).
ALTER TABLE accounts ALTER COLUMN customer_id TYPE text COLLATE "C";
ALTER TABLE ledger
    ALTER COLUMN entry_id TYPE text COLLATE "C",
    ALTER COLUMN customer_id TYPE text COLLATE "C";
ALTER TABLE orders
    ALTER COLUMN order_id TYPE text COLLATE "C",
    ALTER COLUMN customer_id TYPE text COLLATE "C";
