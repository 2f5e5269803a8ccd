-- Every customer's tier state belongs to one shop: the same customer id at two shops has two
-- tiers, two histories, two sets of floors. Rows of the single-shop release become shop
-- 'default'; the column default is only there to fill them and is dropped afterwards, so that
-- no statement can forget the shop.
ALTER TABLE customers ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE customers ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE customers DROP CONSTRAINT customers_pkey;
ALTER TABLE customers ADD PRIMARY KEY (shop_id, customer_id);

ALTER TABLE contributions ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE contributions ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE contributions DROP CONSTRAINT contributions_pkey;
ALTER TABLE contributions ADD PRIMARY KEY (shop_id, customer_id, source_key);
DROP INDEX contributions_by_day;
CREATE INDEX contributions_by_day ON contributions (shop_id, customer_id, day)
    INCLUDE (unit, added, removed);

-- Event ids stay global: the key of a parked movement does not change.
ALTER TABLE parked_movements ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE parked_movements ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX parked_by_source;
CREATE INDEX parked_by_source ON parked_movements (shop_id, customer_id, source_key);

ALTER TABLE floors ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE floors ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE floors DROP CONSTRAINT floors_pkey;
ALTER TABLE floors ADD PRIMARY KEY (shop_id, customer_id, kind, ref);

-- Adding a column fires no row trigger: the append-only history keeps its rows as they were.
ALTER TABLE tier_history ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
ALTER TABLE tier_history ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX tier_history_by_customer;
CREATE INDEX tier_history_by_customer ON tier_history (shop_id, customer_id, seq);
