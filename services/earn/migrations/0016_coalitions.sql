-- Coalitions: the accounts of a coalition's member shops are keyed by the coalition (the
-- holder), so a row's shop_id in the account tables may now name a coalition.
--
-- Additive and nullable with no default: catalogue only, no table is rewritten, and the
-- previous release never names these columns. NULL means what every row meant before.
--   ledger.at_shop         the member shop where an entry happened (NULL: shop_id itself)
--   accounts.last_shop_id  the last member shop with activity on the account, the at_shop of
--                          account-level entries (expiry) and warnings
--   *.holder_id            the account an order, a redemption or a store-credit spend moved,
--                          so that its refund or cancellation reverses from that account even
--                          after the shop has left the coalition (NULL: the row's shop_id)

ALTER TABLE ledger ADD COLUMN at_shop text COLLATE "C";
ALTER TABLE accounts ADD COLUMN last_shop_id text COLLATE "C";
ALTER TABLE orders ADD COLUMN holder_id text COLLATE "C";
ALTER TABLE redemptions ADD COLUMN holder_id text COLLATE "C";
ALTER TABLE credit_spends ADD COLUMN holder_id text COLLATE "C";
