-- Overviews kept per shape: `shape` names the fields of the overview a release computes (a hash
-- of its JSON schema, services/analytics/overview.py). During a rolling upgrade the previous
-- release's replicas keep reading and refreshing `overviews`, whose bodies they can parse,
-- while this release's replicas keep theirs here: neither answers the other's body (an older
-- release refuses a field it does not know) and neither overwrites the other's.
CREATE TABLE overviews_by_shape (
    shape        text NOT NULL,
    shop_id      text NOT NULL,
    time_zone    text NOT NULL,
    currency     text NOT NULL,
    computed_at  timestamptz NOT NULL,
    requested_at timestamptz NOT NULL,
    body         jsonb NOT NULL,
    PRIMARY KEY (shape, shop_id, time_zone, currency)
);
CREATE INDEX overviews_by_shape_due ON overviews_by_shape (shape, computed_at);

-- contract
-- Once no replica of the previous release runs: its cache is computed again on demand if it
-- ever came back, so nothing is lost by dropping it.
DROP TABLE overviews;
