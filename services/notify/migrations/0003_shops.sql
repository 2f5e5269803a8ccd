-- Many shops: every customer's state is keyed by (shop, customer). Rows of the single-shop
-- release become shop 'default'; the DEFAULT is then dropped so that every write names a shop.
ALTER TABLE received_events ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE received_events ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX received_events_by_customer;
CREATE INDEX received_events_by_customer ON received_events (shop_id, customer_id, event_time);

ALTER TABLE customers ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE customers ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE customers DROP CONSTRAINT customers_pkey, ADD PRIMARY KEY (shop_id, customer_id);

-- An order id is unique within its shop only.
ALTER TABLE orders ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE orders ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (shop_id, order_id);
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders (shop_id, customer_id, ordered_at);

ALTER TABLE customer_orders ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE customer_orders ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE customer_orders DROP CONSTRAINT customer_orders_pkey,
    ADD PRIMARY KEY (shop_id, customer_id);

ALTER TABLE tiers ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE tiers ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE tiers DROP CONSTRAINT tiers_pkey, ADD PRIMARY KEY (shop_id, customer_id);

ALTER TABLE points ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE points ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE points DROP CONSTRAINT points_pkey, ADD PRIMARY KEY (shop_id, customer_id);

-- Dedup keys name the customer, who may be a customer of several shops: unique per shop.
ALTER TABLE scheduled ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE scheduled ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE scheduled DROP CONSTRAINT scheduled_dedup_key_key,
    ADD CONSTRAINT scheduled_dedup_key_key UNIQUE (shop_id, dedup_key);
DROP INDEX scheduled_cancel;
CREATE INDEX scheduled_cancel ON scheduled (shop_id, cancel_key) WHERE status = 'pending';
DROP INDEX scheduled_by_customer;
CREATE INDEX scheduled_by_customer ON scheduled (shop_id, customer_id, channel, status);

-- Adding a column with a constant default rewrites no row: the append-only trigger stays quiet.
ALTER TABLE delivery_log ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE delivery_log ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX delivery_log_sent;
CREATE INDEX delivery_log_sent ON delivery_log (shop_id, customer_id, channel, at)
    WHERE outcome = 'sent' AND category = 'marketing';
