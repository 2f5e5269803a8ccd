-- Every fact about a customer is keyed by (shop, customer): the same customer id at two shops
-- is two customers, with their own orders, points, tiers, memberships and messages. The
-- programme's events had no shop before: they were the one programme's, shop 'default'.
-- Customers already had a shop (the sign-up's) and keep it.
--
-- The expand part adds the columns, with their default for a replica of the previous release
-- still writing during a rolling upgrade, and the keys and indexes by shop beside the old ones
-- that release's upserts name (ON CONFLICT (customer_id)). The contract part makes the keys by
-- shop the primary keys, drops the old ones and the defaults, and gives a customer a row at
-- each shop they paid at (docs/operations.md, "Rolling upgrades"). Until it runs, a customer
-- id can be at one shop only.
CREATE UNIQUE INDEX customers_by_shop ON customers (shop_id, customer_id);
CREATE INDEX customers_of_shop_by_acquisition ON customers (shop_id, acquired_at);

CREATE INDEX orders_counted_in_shop ON orders (shop_id, customer_id, paid_at)
    INCLUDE (currency, total, refunded)
    WHERE paid_at IS NOT NULL AND NOT cancelled AND NOT fully_refunded;

ALTER TABLE members ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX members_by_shop ON members (shop_id, customer_id);

ALTER TABLE tier_changes ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE INDEX tier_changes_by_customer_in_shop
    ON tier_changes (shop_id, customer_id, effective_at DESC) INCLUDE (tier);

ALTER TABLE memberships ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
-- A cancellation finds the purchase it ends by shop, customer, tier and start.
CREATE INDEX memberships_by_customer ON memberships (shop_id, customer_id, starts_at);

ALTER TABLE points ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE INDEX points_by_customer_in_shop ON points (shop_id, customer_id, at) INCLUDE (kind, delta);

ALTER TABLE notifications ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE INDEX notifications_by_customer_in_shop ON notifications (shop_id, customer_id, at)
    INCLUDE (trigger, outcome, reason);

-- contract
ALTER TABLE customers DROP CONSTRAINT customers_pkey,
    ADD CONSTRAINT customers_pkey PRIMARY KEY USING INDEX customers_by_shop;
-- The previous release kept one row per customer with their earliest payment at any shop: a
-- customer is now acquired at each shop by their own first payment there.
INSERT INTO customers (shop_id, customer_id, first_paid_at)
    SELECT o.shop_id, o.customer_id, min(o.paid_at)
    FROM orders o
    WHERE o.paid_at IS NOT NULL
      AND NOT EXISTS (SELECT FROM customers c
                      WHERE c.shop_id = o.shop_id AND c.customer_id = o.customer_id)
    GROUP BY 1, 2;
UPDATE customers c SET first_paid_at = paid.first_paid_at
    FROM (SELECT shop_id, customer_id, min(paid_at) AS first_paid_at
          FROM orders WHERE paid_at IS NOT NULL GROUP BY 1, 2) paid
    WHERE c.shop_id = paid.shop_id AND c.customer_id = paid.customer_id
      AND c.first_paid_at IS DISTINCT FROM paid.first_paid_at;

DROP INDEX orders_counted;
ALTER INDEX orders_counted_in_shop RENAME TO orders_counted;

ALTER TABLE members ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE members DROP CONSTRAINT members_pkey,
    ADD CONSTRAINT members_pkey PRIMARY KEY USING INDEX members_by_shop;

ALTER TABLE tier_changes ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX tier_changes_by_customer;
ALTER INDEX tier_changes_by_customer_in_shop RENAME TO tier_changes_by_customer;

ALTER TABLE memberships ALTER COLUMN shop_id DROP DEFAULT;

ALTER TABLE points ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX points_by_customer;
ALTER INDEX points_by_customer_in_shop RENAME TO points_by_customer;

ALTER TABLE notifications ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX notifications_by_customer;
ALTER INDEX notifications_by_customer_in_shop RENAME TO notifications_by_customer;
