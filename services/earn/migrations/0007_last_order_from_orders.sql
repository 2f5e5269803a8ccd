-- The last order time of a customer is read from earn.orders when expiry needs it, instead of
-- being written to the account with every order.
ALTER TABLE accounts DROP COLUMN last_order_at;
