-- Many shops on one deployment: every row of a customer's state belongs to one shop, and the
-- same customer id at two shops is two customers. Rows written before are shop 'default'.
--
-- ADD COLUMN with a constant DEFAULT stores the default in the catalogue: no table is
-- rewritten and no row trigger fires (the ledger's append-only trigger refuses UPDATE, and
-- this is none). The DEFAULT stays so that a replica of the previous release still running
-- during a rolling upgrade writes shop 'default' rows, which is what it means by them.
-- Ids that come from the outside world (order ids, idempotency keys) or are unique per
-- customer become unique per shop; entry ids, the ids of the points events, stay global.

ALTER TABLE accounts ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE accounts DROP CONSTRAINT accounts_pkey;
ALTER TABLE accounts ADD PRIMARY KEY (shop_id, customer_id);

ALTER TABLE ledger ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
DROP INDEX ledger_by_customer;
CREATE INDEX ledger_by_customer ON ledger (shop_id, customer_id, seq);

ALTER TABLE credit_accounts ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE credit_accounts DROP CONSTRAINT credit_accounts_pkey;
ALTER TABLE credit_accounts ADD PRIMARY KEY (shop_id, customer_id, currency);

ALTER TABLE customer_tiers ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
DROP INDEX customer_tiers_in_force;
CREATE INDEX customer_tiers_in_force
    ON customer_tiers (shop_id, customer_id, effective_at DESC, seq DESC);

ALTER TABLE orders ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE orders DROP CONSTRAINT orders_pkey;
ALTER TABLE orders ADD PRIMARY KEY (shop_id, order_id);
DROP INDEX orders_by_customer;
CREATE INDEX orders_by_customer ON orders (shop_id, customer_id, paid_at);

ALTER TABLE waiting_events ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
DROP INDEX waiting_by_order;
CREATE INDEX waiting_by_order ON waiting_events (shop_id, order_id, occurred_at);

ALTER TABLE campaign_usage ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE campaign_usage DROP CONSTRAINT campaign_usage_pkey;
ALTER TABLE campaign_usage ADD PRIMARY KEY (shop_id, campaign, customer_id);
ALTER TABLE campaign_totals ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE campaign_totals DROP CONSTRAINT campaign_totals_pkey;
ALTER TABLE campaign_totals ADD PRIMARY KEY (shop_id, campaign);

ALTER TABLE punch_cards ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE punch_cards DROP CONSTRAINT punch_cards_pkey;
ALTER TABLE punch_cards ADD PRIMARY KEY (shop_id, card, customer_id);

ALTER TABLE memberships ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE memberships DROP CONSTRAINT memberships_pkey;
ALTER TABLE memberships ADD PRIMARY KEY (shop_id, order_id, sku);

ALTER TABLE redemptions ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE redemptions DROP CONSTRAINT redemptions_pkey;
ALTER TABLE redemptions ADD PRIMARY KEY (shop_id, redemption_id);
DROP INDEX redemptions_by_customer;
CREATE INDEX redemptions_by_customer ON redemptions (shop_id, customer_id, created_at);

ALTER TABLE idempotency_keys ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (shop_id, scope, key);

ALTER TABLE customers ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE customers DROP CONSTRAINT customers_pkey;
ALTER TABLE customers ADD PRIMARY KEY (shop_id, customer_id);

ALTER TABLE action_awards ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE action_awards DROP CONSTRAINT action_awards_pkey;
ALTER TABLE action_awards ADD PRIMARY KEY (shop_id, award_id);

ALTER TABLE action_counts ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE action_counts DROP CONSTRAINT action_counts_pkey;
ALTER TABLE action_counts ADD PRIMARY KEY (shop_id, action, customer_id, period);

ALTER TABLE expiry_warnings ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE expiry_warnings DROP CONSTRAINT expiry_warnings_pkey;
ALTER TABLE expiry_warnings ADD PRIMARY KEY (shop_id, warning_id);
DROP INDEX expiry_warnings_by_customer;
CREATE INDEX expiry_warnings_by_customer ON expiry_warnings (shop_id, customer_id, expires_at);

ALTER TABLE credit_spends ADD COLUMN shop_id text COLLATE "C" NOT NULL DEFAULT 'default';
ALTER TABLE credit_spends DROP CONSTRAINT credit_spends_pkey;
ALTER TABLE credit_spends ADD PRIMARY KEY (shop_id, spend_id);
DROP INDEX credit_spends_by_customer;
CREATE INDEX credit_spends_by_customer ON credit_spends (shop_id, customer_id, created_at);
