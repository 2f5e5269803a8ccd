-- Qualification now keeps its own state; the journal of received events is not read any more.
DROP TABLE received_events;

-- One row per customer: the tier in force (published), the tier earned by qualification, and
-- what the scheduled evaluation must do next. Rows are locked while a customer is worked on.
CREATE TABLE customers (
    customer_id      text PRIMARY KEY,
    tier             text NOT NULL,
    tier_since       timestamptz,
    earned_tier      text NOT NULL,
    earned_at        timestamptz,
    review_at        timestamptz,
    below_since      timestamptz,
    warned_deadline  timestamptz,
    evaluated_until  timestamptz,
    next_check_at    timestamptz,
    -- The last basis-topic record applied (a customer's records share one partition): a record
    -- at or before it is already counted, whoever applied it (the live consumer or a backfill).
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_due ON customers (next_check_at) WHERE next_check_at IS NOT NULL;

-- What each order (or points source) adds to the qualifying totals, on the local day it was paid.
-- Windows are sums over these rows by day; refunds and cancellations reduce `removed`.
CREATE TABLE contributions (
    customer_id text NOT NULL,
    source_key  text NOT NULL,
    unit        text NOT NULL,
    day         date NOT NULL,
    added       numeric NOT NULL CHECK (added >= 0),
    removed     numeric NOT NULL CHECK (removed >= 0 AND removed <= added),
    closed      boolean NOT NULL DEFAULT false,
    PRIMARY KEY (customer_id, source_key)
);
CREATE INDEX contributions_by_day ON contributions (customer_id, day) INCLUDE (unit, added, removed);

-- Refunds and cancellations that came before their order: applied when it arrives.
CREATE TABLE parked_movements (
    event_id    text PRIMARY KEY,
    customer_id text NOT NULL,
    source_key  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('remove', 'close')),
    unit        text,
    amount      numeric CHECK (amount > 0),
    occurred_at timestamptz NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parked_by_source ON parked_movements (customer_id, source_key);
CREATE INDEX parked_by_age ON parked_movements (occurred_at);

-- Tiers a customer holds at least, for a time: set by an operator, or bought as a membership.
CREATE TABLE floors (
    customer_id text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('manual', 'membership')),
    ref         text NOT NULL,
    tier        text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    reason      text NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, kind, ref),
    CHECK (ends_at > starts_at)
);

-- Every change of the tier in force, as published in tier.changed; append-only.
CREATE TABLE tier_history (
    seq               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id          text NOT NULL UNIQUE,
    customer_id       text NOT NULL,
    from_tier         text NOT NULL,
    to_tier           text NOT NULL,
    direction         text NOT NULL CHECK (direction IN ('up', 'down')),
    reason            text NOT NULL,
    qualifying_amount numeric NOT NULL,
    unit              text NOT NULL,
    effective_at      timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tier_history_by_customer ON tier_history (customer_id, seq);

CREATE FUNCTION refuse_history_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tier_history is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER tier_history_refuses_update_delete
    BEFORE UPDATE OR DELETE ON tier_history
    FOR EACH ROW EXECUTE FUNCTION refuse_history_change();

CREATE TRIGGER tier_history_refuses_truncate
    BEFORE TRUNCATE ON tier_history
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_history_change();
