-- Many shops: every customer's state is keyed by (shop, customer). Rows of the single-shop
-- release become shop 'default'. Adding a column with a constant default rewrites no row, so
-- the delivery log's append-only trigger stays quiet.
--
-- The expand part adds the columns, with their default for a replica of the previous release
-- still writing during a rolling upgrade, and the keys by shop beside the old keys that
-- release's upserts name. The contract part makes the keys by shop the primary keys, drops the
-- old ones, and drops the defaults so that every write names a shop (docs/operations.md,
-- "Rolling upgrades"). Until it runs, a customer id can be at one shop only.
ALTER TABLE received_events ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE INDEX received_events_by_customer_in_shop
    ON received_events (shop_id, customer_id, event_time);

ALTER TABLE customers ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX customers_by_shop ON customers (shop_id, customer_id);

-- An order id is unique within its shop only.
ALTER TABLE orders ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX orders_by_shop ON orders (shop_id, order_id);
CREATE INDEX orders_by_customer_in_shop ON orders (shop_id, customer_id, ordered_at);

ALTER TABLE customer_orders ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX customer_orders_by_shop ON customer_orders (shop_id, customer_id);

ALTER TABLE tiers ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX tiers_by_shop ON tiers (shop_id, customer_id);

ALTER TABLE points ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX points_by_shop ON points (shop_id, customer_id);

-- Dedup keys name the customer, who may be a customer of several shops: unique per shop.
ALTER TABLE scheduled ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX scheduled_dedup_key_by_shop ON scheduled (shop_id, dedup_key);
CREATE INDEX scheduled_cancel_in_shop ON scheduled (shop_id, cancel_key) WHERE status = 'pending';
CREATE INDEX scheduled_by_customer_in_shop ON scheduled (shop_id, customer_id, channel, status);

ALTER TABLE delivery_log ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE INDEX delivery_log_sent_in_shop ON delivery_log (shop_id, customer_id, channel, at)
    WHERE outcome = 'sent' AND category = 'marketing';

-- contract
ALTER TABLE received_events ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX received_events_by_customer;
ALTER INDEX received_events_by_customer_in_shop RENAME TO received_events_by_customer;

ALTER TABLE customers ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE customers DROP CONSTRAINT customers_pkey,
    ADD CONSTRAINT customers_pkey PRIMARY KEY USING INDEX customers_by_shop;

ALTER TABLE orders ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE orders DROP CONSTRAINT orders_pkey,
    ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_by_shop;
DROP INDEX orders_by_customer;
ALTER INDEX orders_by_customer_in_shop RENAME TO orders_by_customer;

ALTER TABLE customer_orders ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE customer_orders DROP CONSTRAINT customer_orders_pkey,
    ADD CONSTRAINT customer_orders_pkey PRIMARY KEY USING INDEX customer_orders_by_shop;

ALTER TABLE tiers ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE tiers DROP CONSTRAINT tiers_pkey,
    ADD CONSTRAINT tiers_pkey PRIMARY KEY USING INDEX tiers_by_shop;

ALTER TABLE points ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE points DROP CONSTRAINT points_pkey,
    ADD CONSTRAINT points_pkey PRIMARY KEY USING INDEX points_by_shop;

ALTER TABLE scheduled ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE scheduled DROP CONSTRAINT scheduled_dedup_key_key,
    ADD CONSTRAINT scheduled_dedup_key_key UNIQUE USING INDEX scheduled_dedup_key_by_shop;
DROP INDEX scheduled_cancel;
ALTER INDEX scheduled_cancel_in_shop RENAME TO scheduled_cancel;
DROP INDEX scheduled_by_customer;
ALTER INDEX scheduled_by_customer_in_shop RENAME TO scheduled_by_customer;

ALTER TABLE delivery_log ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX delivery_log_sent;
ALTER INDEX delivery_log_sent_in_shop RENAME TO delivery_log_sent;
