-- Every customer's tier state belongs to one shop: the same customer id at two shops has two
-- tiers, two histories, two sets of floors. Rows of the single-shop release become shop
-- 'default'. Adding a column fires no row trigger: the append-only history keeps its rows.
--
-- The expand part adds the columns, with their default for a replica of the previous release
-- still writing during a rolling upgrade, and the keys by shop beside the old keys that
-- release's upserts name. The contract part makes the keys by shop the primary keys, drops the
-- old ones, and drops the defaults so that no statement can forget the shop
-- (docs/operations.md, "Rolling upgrades"). Until it runs, a customer id can be at one shop only.
ALTER TABLE customers ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX customers_by_shop ON customers (shop_id, customer_id);

ALTER TABLE contributions ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX contributions_by_shop ON contributions (shop_id, customer_id, source_key);
CREATE INDEX contributions_by_day_in_shop ON contributions (shop_id, customer_id, day)
    INCLUDE (unit, added, removed);

-- Event ids stay global: the key of a parked movement does not change.
ALTER TABLE parked_movements ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE INDEX parked_by_source_in_shop ON parked_movements (shop_id, customer_id, source_key);

ALTER TABLE floors ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX floors_by_shop ON floors (shop_id, customer_id, kind, ref);

ALTER TABLE tier_history ADD COLUMN shop_id text NOT NULL DEFAULT 'default';
CREATE INDEX tier_history_by_customer_in_shop ON tier_history (shop_id, customer_id, seq);

-- contract
ALTER TABLE customers ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE customers DROP CONSTRAINT customers_pkey,
    ADD CONSTRAINT customers_pkey PRIMARY KEY USING INDEX customers_by_shop;

ALTER TABLE contributions ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE contributions DROP CONSTRAINT contributions_pkey,
    ADD CONSTRAINT contributions_pkey PRIMARY KEY USING INDEX contributions_by_shop;
DROP INDEX contributions_by_day;
ALTER INDEX contributions_by_day_in_shop RENAME TO contributions_by_day;

ALTER TABLE parked_movements ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX parked_by_source;
ALTER INDEX parked_by_source_in_shop RENAME TO parked_by_source;

ALTER TABLE floors ALTER COLUMN shop_id DROP DEFAULT;
ALTER TABLE floors DROP CONSTRAINT floors_pkey,
    ADD CONSTRAINT floors_pkey PRIMARY KEY USING INDEX floors_by_shop;

ALTER TABLE tier_history ALTER COLUMN shop_id DROP DEFAULT;
DROP INDEX tier_history_by_customer;
ALTER INDEX tier_history_by_customer_in_shop RENAME TO tier_history_by_customer;
