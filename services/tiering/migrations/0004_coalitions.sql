-- Coalitions: a coalition's account (shop_id = the coalition) remembers the member shop of its
-- last activity, which its account-level events (reviews, warnings) name as at_shop. NULL for
-- every other account, whose events stay as they were. Only added: no care in an upgrade.
ALTER TABLE customers ADD COLUMN last_shop_id text;
