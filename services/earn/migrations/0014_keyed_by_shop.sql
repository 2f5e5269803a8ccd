-- Many shops on one deployment: every row of a customer's state belongs to one shop, and the
-- same customer id at two shops is two customers. Rows written before are shop 'default'.
--
-- ADD COLUMN with a constant DEFAULT stores the default in the catalogue: no table is
-- rewritten and no row trigger fires (the ledger's append-only trigger refuses UPDATE, and
-- this is none). The DEFAULT stays so that a replica of the previous release still running
-- during a rolling upgrade writes shop 'default' rows, which is what it means by them.
-- Ids that come from the outside world (order ids, idempotency keys) or are unique per
-- customer become unique per shop; entry ids, the ids of the points events, stay global.
--
-- The expand part adds the columns and the keys by shop beside the old keys, which the
-- previous release's upserts name (ON CONFLICT (customer_id)); the contract part makes the
-- keys by shop the primary keys and drops the old ones (docs/operations.md, "Rolling
-- upgrades"). Until it runs, a customer id can be at one shop only.

ALTER TABLE accounts ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX accounts_by_shop ON accounts (shop_id, customer_id);
ALTER TABLE ledger ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE INDEX ledger_by_customer_in_shop ON ledger (shop_id, customer_id, seq);
ALTER TABLE credit_accounts ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX credit_accounts_by_shop ON credit_accounts (shop_id, customer_id, currency);
ALTER TABLE customer_tiers ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE INDEX customer_tiers_in_force_in_shop ON customer_tiers (shop_id, customer_id, effective_at DESC, seq DESC);
ALTER TABLE orders ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX orders_by_shop ON orders (shop_id, order_id);
CREATE INDEX orders_by_customer_in_shop ON orders (shop_id, customer_id, paid_at);
ALTER TABLE waiting_events ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE INDEX waiting_by_order_in_shop ON waiting_events (shop_id, order_id, occurred_at);
ALTER TABLE campaign_usage ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX campaign_usage_by_shop ON campaign_usage (shop_id, campaign, customer_id);
ALTER TABLE campaign_totals ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX campaign_totals_by_shop ON campaign_totals (shop_id, campaign);
ALTER TABLE punch_cards ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX punch_cards_by_shop ON punch_cards (shop_id, card, customer_id);
ALTER TABLE memberships ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX memberships_by_shop ON memberships (shop_id, order_id, sku);
ALTER TABLE redemptions ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX redemptions_by_shop ON redemptions (shop_id, redemption_id);
CREATE INDEX redemptions_by_customer_in_shop ON redemptions (shop_id, customer_id, created_at);
ALTER TABLE idempotency_keys ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX idempotency_keys_by_shop ON idempotency_keys (shop_id, scope, key);
ALTER TABLE customers ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX customers_by_shop ON customers (shop_id, customer_id);
ALTER TABLE action_awards ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX action_awards_by_shop ON action_awards (shop_id, award_id);
ALTER TABLE action_counts ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX action_counts_by_shop ON action_counts (shop_id, action, customer_id, period);
ALTER TABLE expiry_warnings ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX expiry_warnings_by_shop ON expiry_warnings (shop_id, warning_id);
CREATE INDEX expiry_warnings_by_customer_in_shop ON expiry_warnings (shop_id, customer_id, expires_at);
ALTER TABLE credit_spends ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
CREATE UNIQUE INDEX credit_spends_by_shop ON credit_spends (shop_id, spend_id);
CREATE INDEX credit_spends_by_customer_in_shop ON credit_spends (shop_id, customer_id, created_at);

-- contract
ALTER TABLE accounts DROP CONSTRAINT accounts_pkey,
    ADD CONSTRAINT accounts_pkey PRIMARY KEY USING INDEX accounts_by_shop;
DROP INDEX ledger_by_customer;
ALTER INDEX ledger_by_customer_in_shop RENAME TO ledger_by_customer;
ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_pkey,
    ADD CONSTRAINT credit_accounts_pkey PRIMARY KEY USING INDEX credit_accounts_by_shop;
DROP INDEX customer_tiers_in_force;
ALTER INDEX customer_tiers_in_force_in_shop RENAME TO customer_tiers_in_force;
ALTER TABLE orders DROP CONSTRAINT orders_pkey,
    ADD CONSTRAINT orders_pkey PRIMARY KEY USING INDEX orders_by_shop;
DROP INDEX orders_by_customer;
ALTER INDEX orders_by_customer_in_shop RENAME TO orders_by_customer;
DROP INDEX waiting_by_order;
ALTER INDEX waiting_by_order_in_shop RENAME TO waiting_by_order;
ALTER TABLE campaign_usage DROP CONSTRAINT campaign_usage_pkey,
    ADD CONSTRAINT campaign_usage_pkey PRIMARY KEY USING INDEX campaign_usage_by_shop;
ALTER TABLE campaign_totals DROP CONSTRAINT campaign_totals_pkey,
    ADD CONSTRAINT campaign_totals_pkey PRIMARY KEY USING INDEX campaign_totals_by_shop;
ALTER TABLE punch_cards DROP CONSTRAINT punch_cards_pkey,
    ADD CONSTRAINT punch_cards_pkey PRIMARY KEY USING INDEX punch_cards_by_shop;
ALTER TABLE memberships DROP CONSTRAINT memberships_pkey,
    ADD CONSTRAINT memberships_pkey PRIMARY KEY USING INDEX memberships_by_shop;
ALTER TABLE redemptions DROP CONSTRAINT redemptions_pkey,
    ADD CONSTRAINT redemptions_pkey PRIMARY KEY USING INDEX redemptions_by_shop;
DROP INDEX redemptions_by_customer;
ALTER INDEX redemptions_by_customer_in_shop RENAME TO redemptions_by_customer;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey,
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY USING INDEX idempotency_keys_by_shop;
ALTER TABLE customers DROP CONSTRAINT customers_pkey,
    ADD CONSTRAINT customers_pkey PRIMARY KEY USING INDEX customers_by_shop;
ALTER TABLE action_awards DROP CONSTRAINT action_awards_pkey,
    ADD CONSTRAINT action_awards_pkey PRIMARY KEY USING INDEX action_awards_by_shop;
ALTER TABLE action_counts DROP CONSTRAINT action_counts_pkey,
    ADD CONSTRAINT action_counts_pkey PRIMARY KEY USING INDEX action_counts_by_shop;
ALTER TABLE expiry_warnings DROP CONSTRAINT expiry_warnings_pkey,
    ADD CONSTRAINT expiry_warnings_pkey PRIMARY KEY USING INDEX expiry_warnings_by_shop;
DROP INDEX expiry_warnings_by_customer;
ALTER INDEX expiry_warnings_by_customer_in_shop RENAME TO expiry_warnings_by_customer;
ALTER TABLE credit_spends DROP CONSTRAINT credit_spends_pkey,
    ADD CONSTRAINT credit_spends_pkey PRIMARY KEY USING INDEX credit_spends_by_shop;
DROP INDEX credit_spends_by_customer;
ALTER INDEX credit_spends_by_customer_in_shop RENAME TO credit_spends_by_customer;
