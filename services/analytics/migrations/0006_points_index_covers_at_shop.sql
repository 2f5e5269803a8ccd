-- The report joins each customer's points by account and by the shop where each entry
-- happened (COALESCE(at_shop, shop_id), migration 0003). The index by customer held only
-- kind and delta, so PostgreSQL read at_shop from the table: it chose a scan of every points
-- row and a hash join, 242 ms for a segment of 900 customers over 260,000 entries, where an
-- index-only scan took 18 ms before at_shop (bench.analytics' data, EXPLAIN ANALYZE). The
-- index holds at_shop too now. Built before the old one is dropped, so a replica of the
-- previous release, which never names the index, keeps its plans meanwhile.
CREATE INDEX points_by_customer_at_shop ON points (shop_id, customer_id, at)
    INCLUDE (kind, delta, at_shop);
DROP INDEX points_by_customer;
ALTER INDEX points_by_customer_at_shop RENAME TO points_by_customer;
