-- Balances per customer: a projection of the ledger kept in the same transaction as each entry.
CREATE TABLE accounts (
    customer_id     text PRIMARY KEY,
    points_balance  bigint NOT NULL DEFAULT 0,
    lifetime_earned bigint NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- The points ledger: append-only. Corrections are new entries (reversal, adjustment).
CREATE TABLE ledger (
    entry_id        text PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    customer_id     text NOT NULL,
    kind            text NOT NULL
                    CHECK (kind IN ('earned', 'reversed', 'redeemed', 'expired', 'adjusted')),
    delta           bigint NOT NULL CHECK (delta <> 0),
    balance_after   bigint NOT NULL,
    reason          text NOT NULL,
    order_id        text,
    source_event_id text,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ledger_by_customer ON ledger (customer_id, seq);

CREATE FUNCTION refuse_ledger_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'earn.ledger is append-only: % is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'record a reversal or an adjustment entry instead';
END
$$;

CREATE TRIGGER ledger_refuses_update_delete
    BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change();

CREATE TRIGGER ledger_refuses_truncate
    BEFORE TRUNCATE ON ledger
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_change();
