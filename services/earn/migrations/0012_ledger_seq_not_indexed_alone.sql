-- The ledger's seq is read only within one customer's entries (pages of a customer's history,
-- the expiry pass), which ledger_by_customer (customer_id, seq) serves. Its own unique index
-- cost an index entry and a write-ahead log record per entry; the identity column still gives
-- every entry a seq of its own (GENERATED ALWAYS: an insert cannot choose one).
ALTER TABLE ledger DROP CONSTRAINT ledger_seq_key;
