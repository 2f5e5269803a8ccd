-- The overview of a shop (or coalition; '' for the whole platform) in a zone and a currency,
-- as last computed: requests answer the row and mark requested_at; a background task of every
-- analytics process recomputes the rows requested in the last day once they are older than
-- LOYALTY_ANALYTICS_OVERVIEW_EVERY_S.
CREATE TABLE overviews (
    shop_id      text NOT NULL,
    time_zone    text NOT NULL,
    currency     text NOT NULL,
    computed_at  timestamptz NOT NULL,
    requested_at timestamptz NOT NULL,
    body         jsonb NOT NULL,
    PRIMARY KEY (shop_id, time_zone, currency)
);
CREATE INDEX overviews_due ON overviews (computed_at);
