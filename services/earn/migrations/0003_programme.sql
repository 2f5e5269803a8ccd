-- The complete programme: store credit beside points, expiry dates on earnings, orders with
-- their pending points, events waiting for their order, campaign caps, punch cards and
-- memberships.

ALTER TABLE ledger DROP CONSTRAINT ledger_kind_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind_check
    CHECK (kind IN ('earned', 'reversed', 'redeemed', 'expired', 'adjusted', 'restored'));
-- 'points', or 'store_credit' whose deltas are minor units of `currency` (cents, dong).
ALTER TABLE ledger ADD COLUMN balance_kind text NOT NULL DEFAULT 'points'
    CHECK (balance_kind IN ('points', 'store_credit'));
ALTER TABLE ledger ADD COLUMN currency text;
ALTER TABLE ledger ADD CONSTRAINT ledger_credit_has_currency
    CHECK ((balance_kind = 'store_credit') = (currency IS NOT NULL));
-- Positive point entries: when they expire unless spent before (spending takes the oldest).
ALTER TABLE ledger ADD COLUMN expires_at timestamptz;
CREATE INDEX ledger_expiring ON ledger (expires_at) WHERE expires_at IS NOT NULL;

-- Points of paid orders not yet available (return window), and the last paid order.
ALTER TABLE accounts ADD COLUMN points_pending bigint NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN last_order_at timestamptz;

-- Store credit per customer and currency, in minor units: a projection of the ledger.
CREATE TABLE credit_accounts (
    customer_id   text NOT NULL,
    currency      text NOT NULL,
    balance_minor bigint NOT NULL DEFAULT 0,
    pending_minor bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, currency)
);

-- Every paid order earn has seen, what it earns, and where its points are.
CREATE TABLE orders (
    order_id        text PRIMARY KEY,
    customer_id     text NOT NULL,
    currency        text NOT NULL,
    paid_event_id   text NOT NULL,
    paid_at         timestamptz NOT NULL,
    paid_total      numeric NOT NULL CHECK (paid_total >= 0),
    base_amount     numeric NOT NULL CHECK (base_amount >= 0),
    points          bigint NOT NULL CHECK (points >= 0),
    credit_minor    bigint NOT NULL CHECK (credit_minor >= 0),
    breakdown       jsonb NOT NULL,
    punches         text[] NOT NULL DEFAULT '{}',
    refunded        numeric NOT NULL DEFAULT 0,
    points_reversed bigint NOT NULL DEFAULT 0,
    credit_reversed bigint NOT NULL DEFAULT 0,
    status          text NOT NULL CHECK (status IN ('pending', 'available', 'cancelled')),
    completed_at    timestamptz,
    release_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_due ON orders (release_at) WHERE status = 'pending';
CREATE INDEX orders_by_customer ON orders (customer_id, paid_at);

-- Completions, cancellations and refunds that arrived before the payment of their order.
CREATE TABLE waiting_events (
    event_id    text PRIMARY KEY,
    order_id    text NOT NULL,
    event_type  text NOT NULL,
    occurred_at timestamptz NOT NULL,
    event       jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX waiting_by_order ON waiting_events (order_id, occurred_at);

-- Bonus points given by each campaign, per customer and in all: what the caps are held to.
CREATE TABLE campaign_usage (
    campaign    text NOT NULL,
    customer_id text NOT NULL,
    points      bigint NOT NULL,
    PRIMARY KEY (campaign, customer_id)
);
CREATE TABLE campaign_totals (
    campaign text PRIMARY KEY,
    points   bigint NOT NULL
);

CREATE TABLE punch_cards (
    card        text NOT NULL,
    customer_id text NOT NULL,
    punches     bigint NOT NULL CHECK (punches >= 0),
    PRIMARY KEY (card, customer_id)
);

-- Paid memberships, announced on loyalty.memberships for tiering.
CREATE TABLE memberships (
    order_id    text NOT NULL,
    sku         text NOT NULL,
    customer_id text NOT NULL,
    tier        text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    PRIMARY KEY (order_id, sku)
);
