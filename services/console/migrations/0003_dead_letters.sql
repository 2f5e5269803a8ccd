-- The operations page's index of dead letters: the console's background indexer copies each
-- record of every *.dlq topic here (services/console/dead_letter_index.py), so that the page
-- reads PostgreSQL, not Kafka. Kafka stays the record: replay reads the dead letter there.
CREATE TABLE dead_letters (
    dlq_topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    -- the record's timestamp (ms), as dlq.replays keeps it: a recreated topic reusing offsets
    -- is not mistaken for the replayed one
    record_timestamp bigint NOT NULL,
    -- the body's data.shop_id; NULL for a body that is not JSON (platform operators only)
    shop_id text,
    topic text NOT NULL,
    service text NOT NULL,
    error_class text NOT NULL,
    error_message text NOT NULL,
    dead_lettered_at timestamptz NOT NULL,
    key bytea,
    PRIMARY KEY (dlq_topic, partition, "offset")
);
-- The page lists a shop's newest first by the record's timestamp, as Kafka wrote it to the .dlq
-- topic: the x-dlq-time header is the dead-lettering service's clock, which may stand elsewhere.
CREATE INDEX dead_letters_by_shop ON dead_letters (shop_id, record_timestamp DESC);

-- Where the indexer goes on from in each partition, advanced in the transaction that inserts.
CREATE TABLE dead_letter_offsets (
    dlq_topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    PRIMARY KEY (dlq_topic, partition)
);
