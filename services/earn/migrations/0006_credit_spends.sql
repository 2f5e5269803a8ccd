-- Store credit spent at checkout: one row per spend and, once cancelled, the entry that gave
-- the credit back. The credit itself moves only in the ledger (redeemed / restored entries of
-- balance_kind 'store_credit') and in earn.credit_accounts. Like earn.redemptions, the entry
-- ids carry no foreign key: one would make TRUNCATE of the ledger fail on the key before the
-- ledger's own append-only trigger could refuse it.
CREATE TABLE credit_spends (
    spend_id            text PRIMARY KEY,
    customer_id         text NOT NULL,
    currency            text NOT NULL,
    amount_minor        bigint NOT NULL CHECK (amount_minor > 0),
    order_id            text,
    balance_after_minor bigint NOT NULL CHECK (balance_after_minor >= 0),
    status              text NOT NULL CHECK (status IN ('spent', 'cancelled')),
    spent_entry_id      text NOT NULL,
    restored_entry_id   text,
    created_at          timestamptz NOT NULL,
    cancelled_at        timestamptz,
    cancel_reason       text,
    CONSTRAINT credit_spends_cancelled_restored
        CHECK ((status = 'cancelled') = (restored_entry_id IS NOT NULL))
);
CREATE INDEX credit_spends_by_customer ON credit_spends (customer_id, created_at);
