-- Keys that lead with the id and end with the shop. Since migration 0014 the keys of earn's
-- hottest tables compared the shop first: with one shop, or few, every B-tree comparison on the
-- hot path (the balance upsert, the order and customer lookups, the copies of the orders and
-- the ledger) compared equal shops before it reached the id. The id first decides almost every
-- comparison at once; the shop stays in each key, so a key is still unique per shop, and a
-- lookup by (shop, id) uses it whichever comes first (`ON CONFLICT (shop_id, customer_id)`
-- infers either order). Measured: docs/performance.md.
--
-- Lock order does not change: every writer still locks accounts, orders and customers in
-- (shop_id, customer_id) or (shop_id, order_id) order, which the queries' ORDER BY and the
-- code's sorts give, not the index.
--
-- The coalition sweep (take_points_to_carry) claims one shop's accounts with a balance, in
-- (shop_id, customer_id) order: without a key led by the shop it read every account of every
-- shop for each batch (a sequential scan of 300,000 accounts over 1,000 shops took 122 ms).
-- accounts_of_shop keeps that order. It costs one more index entry per new account only: the
-- balance writes change neither column, so they stay HOT updates. The expiry pass, the release
-- of orders and the birthdays read their own indexes (by due time) and filter the shop after,
-- as before; every lookup by (shop, id) or by pairs of them uses the new keys.
--
-- The expand part builds the new keys beside the old ones, which the previous release's code
-- may still lean on; the contract part makes them the primary keys, drops the old ones and
-- gives the new indexes the old names (docs/operations.md, "Rolling upgrades").

CREATE UNIQUE INDEX accounts_by_id ON accounts (customer_id, shop_id);
CREATE INDEX accounts_of_shop ON accounts (shop_id, customer_id);
CREATE UNIQUE INDEX orders_by_id ON orders (order_id, shop_id);
CREATE INDEX orders_by_customer_id ON orders (customer_id, shop_id, paid_at);
CREATE UNIQUE INDEX customers_by_id ON customers (customer_id, shop_id);
CREATE INDEX ledger_by_customer_id ON ledger (customer_id, shop_id, seq);
CREATE INDEX customer_tiers_in_force_by_id
    ON customer_tiers (customer_id, shop_id, effective_at DESC, seq DESC);

-- contract
ALTER TABLE accounts DROP CONSTRAINT accounts_pkey,
    ADD CONSTRAINT accounts_pkey PRIMARY KEY USING INDEX accounts_by_id;
ALTER TABLE orders DROP CONSTRAINT orders_pkey,
    ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_by_id;
DROP INDEX orders_by_customer;
ALTER INDEX orders_by_customer_id RENAME TO orders_by_customer;
ALTER TABLE customers DROP CONSTRAINT customers_pkey,
    ADD CONSTRAINT customers_pkey PRIMARY KEY USING INDEX customers_by_id;
DROP INDEX ledger_by_customer;
ALTER INDEX ledger_by_customer_id RENAME TO ledger_by_customer;
DROP INDEX customer_tiers_in_force;
ALTER INDEX customer_tiers_in_force_by_id RENAME TO customer_tiers_in_force;
