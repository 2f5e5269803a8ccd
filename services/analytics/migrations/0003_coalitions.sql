-- A coalition's account is kept under the coalition's id (the events' shop_id, the holder);
-- at_shop is the member shop where an entry or a change happened (NULL: the account's own
-- shop). Nullable with no default: rows of shops outside any coalition stay as they are, and
-- a replica of the previous release, naming neither column, keeps writing.
ALTER TABLE points ADD COLUMN at_shop text;
ALTER TABLE tier_changes ADD COLUMN at_shop text;
