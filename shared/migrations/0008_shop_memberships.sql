-- Every service's projection of the shops' memberships of coalitions (shop.coalition_changed):
-- from effective_from, the shop's accounts are held by coalition_id, or by the shop when NULL.
CREATE TABLE shop_memberships (
    shop_id text NOT NULL,
    version integer NOT NULL,
    coalition_id text,
    effective_from timestamptz NOT NULL,
    PRIMARY KEY (shop_id, version)
);
