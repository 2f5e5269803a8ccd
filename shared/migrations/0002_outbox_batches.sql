-- One outbox row per write instead of one per event: a transaction that announced 500 events
-- inserted 500 rows and their index entries, and the relay deleted them one by one; now it
-- inserts one row holding the messages as arrays, in the order written. Each message's
-- headers are header_counts[i] consecutive entries of header_names and header_values.
-- Rows waiting from before become rows of one message, so nothing waiting is lost.
ALTER TABLE outbox
    ALTER COLUMN topic TYPE text[] USING ARRAY[topic],
    ALTER COLUMN key TYPE bytea[] USING ARRAY[key],
    ALTER COLUMN value TYPE bytea[] USING ARRAY[value],
    ADD COLUMN header_counts integer[];
UPDATE outbox SET header_counts = ARRAY[cardinality(header_names)];
ALTER TABLE outbox ALTER COLUMN header_counts SET NOT NULL;
ALTER TABLE outbox RENAME COLUMN topic TO topics;
ALTER TABLE outbox RENAME COLUMN key TO keys;
ALTER TABLE outbox RENAME COLUMN value TO payloads;
-- Stored uncompressed: compressing a row of hundreds of short JSON messages costs the database
-- CPU on every write for space the relay gives back within milliseconds.
ALTER TABLE outbox ALTER COLUMN payloads SET STORAGE EXTERNAL;
ALTER TABLE outbox ADD CONSTRAINT outbox_messages_line_up CHECK (
    cardinality(topics) > 0
    AND cardinality(keys) = cardinality(topics)
    AND cardinality(payloads) = cardinality(topics)
    AND cardinality(header_counts) = cardinality(topics)
    AND cardinality(header_values) = cardinality(header_names));
