-- Every fact about a customer is keyed by (shop, customer): the same customer id at two shops
-- is two customers, with their own orders, points, tiers, memberships and messages.

-- A customer is known at each shop they signed up or paid at; rows stored before this kept
-- one shop (the sign-up's) and the earliest payment at any shop.
ALTER TABLE customers DROP CONSTRAINT customers_pkey;
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
ALTER TABLE customers ADD PRIMARY KEY (shop_id, customer_id);
DROP INDEX customers_by_acquisition;
CREATE INDEX customers_by_acquisition ON customers (acquired_at) INCLUDE (shop_id);
CREATE INDEX customers_of_shop_by_acquisition ON customers (shop_id, acquired_at);

DROP INDEX orders_counted;
CREATE INDEX orders_counted ON orders (shop_id, customer_id, paid_at)
    INCLUDE (currency, total, refunded)
    WHERE paid_at IS NOT NULL AND NOT cancelled AND NOT fully_refunded;

-- The programme's events had no shop before: they were the one programme's, shop 'default'.
-- The defaults fill the stored rows only; every writer names the shop.
ALTER TABLE members ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE members ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE members DROP CONSTRAINT members_pkey, ADD PRIMARY KEY (shop_id, customer_id);

ALTER TABLE tier_changes ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE tier_changes ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX tier_changes_by_customer;
CREATE INDEX tier_changes_by_customer ON tier_changes (shop_id, customer_id, effective_at DESC)
    INCLUDE (tier);

ALTER TABLE memberships ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE memberships ALTER COLUMN shop_id DROP DEFAULT;
-- A cancellation finds the purchase it ends by shop, customer, tier and start.
CREATE INDEX memberships_by_customer ON memberships (shop_id, customer_id, starts_at);

ALTER TABLE points ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE points ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX points_by_customer;
CREATE INDEX points_by_customer ON points (shop_id, customer_id, at) INCLUDE (kind, delta);

ALTER TABLE notifications ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE notifications ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX notifications_by_customer;
CREATE INDEX notifications_by_customer ON notifications (shop_id, customer_id, at)
    INCLUDE (trigger, outcome, reason);
