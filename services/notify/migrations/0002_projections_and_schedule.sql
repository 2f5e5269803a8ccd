-- What notify knows of each customer, from shop.customers and its own unsubscribe endpoint.
CREATE TABLE customers (
    customer_id       text PRIMARY KEY,
    email             text,
    name              text,
    locale            text,
    time_zone         text,
    birthday          date,
    consent_email     boolean NOT NULL DEFAULT false,
    consent_push      boolean NOT NULL DEFAULT false,
    unsubscribed_email_at timestamptz,
    unsubscribed_push_at  timestamptz,
    push_subscription jsonb,
    signed_up_at      timestamptz,
    updated_at        timestamptz NOT NULL
);
CREATE INDEX customers_by_birthday ON customers (
    (extract(month FROM birthday)), (extract(day FROM birthday))) WHERE birthday IS NOT NULL;

-- Orders seen (placed or paid), one row per order: last order time and count per customer.
CREATE TABLE orders (
    order_id    text PRIMARY KEY,
    customer_id text NOT NULL,
    ordered_at  timestamptz NOT NULL
);
CREATE INDEX orders_by_customer ON orders (customer_id, ordered_at);

CREATE TABLE customer_orders (
    customer_id   text PRIMARY KEY,
    order_count   integer NOT NULL,
    first_order_at timestamptz NOT NULL,
    last_order_at timestamptz NOT NULL
);
CREATE INDEX customer_orders_by_last ON customer_orders (last_order_at);

-- Tier and points, from loyalty.tiers and loyalty.points.
CREATE TABLE tiers (
    customer_id text PRIMARY KEY,
    tier        text NOT NULL,
    tier_name   text,
    benefits    jsonb NOT NULL DEFAULT '[]',
    changed_at  timestamptz NOT NULL
);

CREATE TABLE points (
    customer_id text PRIMARY KEY,
    balance     bigint NOT NULL,
    updated_at  timestamptz NOT NULL
);

-- Messages to send: one row per trigger, channel and dedup key; the worker claims due rows.
CREATE TABLE scheduled (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key   text NOT NULL UNIQUE,
    customer_id text NOT NULL,
    trigger     text NOT NULL,
    template    text NOT NULL,
    channel     text NOT NULL CHECK (channel IN ('email', 'push')),
    category    text NOT NULL CHECK (category IN ('transactional', 'marketing')),
    due_at      timestamptz NOT NULL,
    payload     jsonb NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'suppressed',
                                  'cancelled')),
    attempts    integer NOT NULL DEFAULT 0,
    cancel_key  text,
    lease_until timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
-- Transactional messages first (category sorts 'marketing' < 'transactional': DESC).
CREATE INDEX scheduled_due ON scheduled (due_at) WHERE status IN ('pending', 'sending');
CREATE INDEX scheduled_cancel ON scheduled (cancel_key) WHERE status = 'pending';
CREATE INDEX scheduled_by_customer ON scheduled (customer_id, channel, status);

-- Every delivery attempt and decision: append-only.
CREATE TABLE delivery_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scheduled_id bigint NOT NULL REFERENCES scheduled (id),
    customer_id  text NOT NULL,
    trigger      text NOT NULL,
    channel      text NOT NULL,
    category     text NOT NULL,
    attempt      integer NOT NULL,
    outcome      text NOT NULL
                 CHECK (outcome IN ('sent', 'retry', 'failed', 'suppressed', 'deferred',
                                    'cancelled')),
    detail       text,
    at           timestamptz NOT NULL
);
CREATE INDEX delivery_log_sent ON delivery_log (customer_id, channel, at)
    WHERE outcome = 'sent' AND category = 'marketing';
CREATE INDEX delivery_log_by_scheduled ON delivery_log (scheduled_id);

CREATE FUNCTION refuse_delivery_log_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'notify.delivery_log is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER delivery_log_refuses_update_delete
    BEFORE UPDATE OR DELETE ON delivery_log
    FOR EACH ROW EXECUTE FUNCTION refuse_delivery_log_change();

CREATE TRIGGER delivery_log_refuses_truncate
    BEFORE TRUNCATE ON delivery_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_delivery_log_change();
