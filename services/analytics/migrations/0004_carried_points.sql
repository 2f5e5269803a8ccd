-- Points carried into a coalition's account when a shop joins it (earn's `points.adjusted`
-- entries with reason `coalition.joined`) are kept as kind `carried`: they count in a
-- balance outstanding, but are neither issued nor taken back. Only the check changes (one
-- scan of the table, no row rewritten), and a replica of the previous release never writes
-- the new kind.
ALTER TABLE points DROP CONSTRAINT points_kind_check,
    ADD CONSTRAINT points_kind_check
        CHECK (kind IN ('earned', 'reversed', 'redeemed', 'expired', 'adjusted', 'carried'));
