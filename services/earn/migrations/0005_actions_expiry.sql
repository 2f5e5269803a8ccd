-- Points for actions other than buying, and expiry.

-- What earn knows of each customer from shop.customers (birthday, time zone, referrer) and
-- from its own orders (the first paid one): birthdays are awarded from here, and a referral is
-- rewarded once both the referrer and the referred customer's first paid order are known.
CREATE TABLE customers (
    customer_id          text PRIMARY KEY,
    birthday             date,
    time_zone            text,
    next_birthday_at     timestamptz,
    referrer_id          text,
    referral_event_id    text,
    referral_at          timestamptz,
    first_order_id       text,
    first_order_event_id text,
    first_paid_at        timestamptz,
    referral_rewarded    boolean NOT NULL DEFAULT false,
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_birthdays_due ON customers (next_birthday_at)
    WHERE next_birthday_at IS NOT NULL;

-- Customers who paid before this table existed have had their first order.
INSERT INTO customers (customer_id, first_order_id, first_order_event_id, first_paid_at)
SELECT DISTINCT ON (customer_id) customer_id, order_id, paid_event_id, paid_at
FROM orders
ORDER BY customer_id, paid_at, order_id;

-- Every action award decided, granted or refused by its limit: one decision per award id
-- (a review id, a share id...), whatever event carries it.
CREATE TABLE action_awards (
    award_id        text PRIMARY KEY,
    action          text NOT NULL,
    customer_id     text NOT NULL,
    points          bigint NOT NULL CHECK (points >= 0),
    occurred_at     timestamptz NOT NULL,
    source_event_id text,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);

-- How many awards of an action a customer was granted in a period ('day:2026-12-02',
-- 'week:2026-11-30', 'month:2026-12', 'year:2026', 'lifetime'): the limits are held to these
-- counters, locked in the awarding transaction.
CREATE TABLE action_counts (
    action      text NOT NULL,
    customer_id text NOT NULL,
    period      text NOT NULL,
    used        integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (action, customer_id, period)
);

-- When the expiry pass next needs to look at an account (a warning or an expiry falls due);
-- '-infinity' means at the next pass. New points reset it (trigger below).
ALTER TABLE accounts ADD COLUMN expiry_check_at timestamptz NOT NULL DEFAULT '-infinity';
CREATE INDEX accounts_expiry_due ON accounts (expiry_check_at);

CREATE FUNCTION points_added_check_expiry() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE accounts a SET expiry_check_at = '-infinity'
    FROM (SELECT DISTINCT customer_id FROM added
          WHERE balance_kind = 'points' AND delta > 0) n
    WHERE a.customer_id = n.customer_id AND a.expiry_check_at <> '-infinity';
    RETURN NULL;
END
$$;

CREATE TRIGGER ledger_points_added_check_expiry
    AFTER INSERT ON ledger REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION points_added_check_expiry();

-- points.expiring warnings sent, one per customer and expiry date.
CREATE TABLE expiry_warnings (
    warning_id  text PRIMARY KEY,
    customer_id text NOT NULL,
    points      bigint NOT NULL CHECK (points > 0),
    expires_at  timestamptz NOT NULL,
    sent_at     timestamptz NOT NULL
);
CREATE INDEX expiry_warnings_by_customer ON expiry_warnings (customer_id, expires_at);
