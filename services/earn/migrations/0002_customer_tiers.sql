-- What earn knows of each customer's tier, projected from tier.changed on loyalty.tiers: the
-- multiplier in force from each effective time on. Orders are credited with the multiplier of
-- the last change effective strictly before the order was paid.
CREATE TABLE customer_tiers (
    event_id     text PRIMARY KEY,
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    customer_id  text NOT NULL,
    tier         text NOT NULL,
    multiplier   numeric NOT NULL CHECK (multiplier >= 1),
    effective_at timestamptz NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_tiers_in_force ON customer_tiers (customer_id, effective_at DESC, seq DESC);
