-- Compact facts from the shop's and the programme's events; figures are computed from them
-- at query time.

-- Customers the shop told about: signed up, or seen paying. Acquired at the earlier of the two.
CREATE TABLE customers (
    customer_id   text PRIMARY KEY,
    shop_id       text NOT NULL,
    signed_up_at  timestamptz,
    first_paid_at timestamptz,
    acquired_at   timestamptz GENERATED ALWAYS AS (LEAST(signed_up_at, first_paid_at)) STORED
);
CREATE INDEX customers_by_acquisition ON customers (acquired_at) INCLUDE (shop_id);

-- One row per order; refunds and cancellations fold into it (a refund may come first).
CREATE TABLE orders (
    shop_id        text NOT NULL,
    order_id       text NOT NULL,
    customer_id    text NOT NULL,
    currency       text,
    total          numeric,
    paid_at        timestamptz,
    refunded       numeric NOT NULL DEFAULT 0,
    fully_refunded boolean NOT NULL DEFAULT false,
    cancelled      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (shop_id, order_id)
);
-- The orders that count (paid, neither cancelled nor fully refunded), by customer and time.
CREATE INDEX orders_counted ON orders (customer_id, paid_at)
    INCLUDE (currency, shop_id, total, refunded)
    WHERE paid_at IS NOT NULL AND NOT cancelled AND NOT fully_refunded;

-- Customers in the programme: since their first points entry, tier or membership.
CREATE TABLE members (
    customer_id text PRIMARY KEY,
    joined_at   timestamptz NOT NULL
);

CREATE TABLE tier_changes (
    event_id     text PRIMARY KEY,
    customer_id  text NOT NULL,
    tier         text NOT NULL,
    effective_at timestamptz NOT NULL
);
CREATE INDEX tier_changes_by_customer ON tier_changes (customer_id, effective_at DESC)
    INCLUDE (tier);

CREATE TABLE memberships (
    event_id    text PRIMARY KEY,
    customer_id text NOT NULL,
    tier        text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL
);

-- Points ledger entries as loyalty.points told them.
CREATE TABLE points (
    entry_id    text PRIMARY KEY,
    customer_id text NOT NULL,
    kind        text NOT NULL
        CHECK (kind IN ('earned', 'reversed', 'redeemed', 'expired', 'adjusted')),
    delta       bigint NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX points_by_customer ON points (customer_id, at) INCLUDE (kind, delta);

-- What became of each message.
CREATE TABLE notifications (
    event_id        text PRIMARY KEY,
    notification_id text NOT NULL,
    customer_id     text NOT NULL,
    trigger         text NOT NULL,
    channel         text NOT NULL,
    outcome         text NOT NULL CHECK (outcome IN ('sent', 'failed', 'suppressed')),
    reason          text,
    at              timestamptz NOT NULL
);
CREATE INDEX notifications_by_customer ON notifications (customer_id, at)
    INCLUDE (trigger, outcome, reason);
