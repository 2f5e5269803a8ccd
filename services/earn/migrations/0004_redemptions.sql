-- Redemptions of catalogue rewards, and the stored outcomes of idempotent HTTP requests.

-- One row per redemption: the voucher it issued and, once cancelled, the entry that gave the
-- points back. The points themselves move only in the ledger (redeemed / restored entries).
-- The entry ids carry no foreign key: one would make TRUNCATE of the ledger fail on the key
-- before the ledger's own append-only trigger could refuse it.
CREATE TABLE redemptions (
    redemption_id     text PRIMARY KEY,
    customer_id       text NOT NULL,
    reward_code       text NOT NULL,
    reward_name       text NOT NULL,
    reward_kind       text NOT NULL
                      CHECK (reward_kind IN ('voucher', 'points_as_money', 'free_shipping', 'gift')),
    points            bigint NOT NULL CHECK (points > 0),
    value             numeric CHECK (value > 0),
    currency          text,
    sku               text,
    voucher_code      text NOT NULL,
    status            text NOT NULL CHECK (status IN ('issued', 'cancelled')),
    redeemed_entry_id text NOT NULL,
    restored_entry_id text,
    created_at        timestamptz NOT NULL,
    expires_at        timestamptz NOT NULL,
    cancelled_at      timestamptz,
    cancel_reason     text,
    CONSTRAINT redemptions_voucher_code_unique UNIQUE (voucher_code),
    CONSTRAINT redemptions_value_has_currency CHECK ((value IS NULL) = (currency IS NULL)),
    CONSTRAINT redemptions_cancelled_restored
        CHECK ((status = 'cancelled') = (restored_entry_id IS NOT NULL))
);
CREATE INDEX redemptions_by_customer ON redemptions (customer_id, created_at);

-- Idempotent requests: the first request with a key inserts its row, then in the same
-- transaction its effect and its response; a concurrent request with the key waits for that
-- transaction, and a retry finds the row and gets the same response. `scope` keeps the keys of
-- different operations apart (redeem, adjust, bulk grant). The response is NULL only inside
-- the transaction that handles the request: no other one ever sees it so.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,
    key          text NOT NULL,
    fingerprint  text NOT NULL,
    status_code  integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
