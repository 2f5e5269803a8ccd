-- How many messages each outbox row holds, kept with the row: a relay pass picks rows by it
-- after locking them, without reading their arrays.
ALTER TABLE outbox ADD COLUMN size integer GENERATED ALWAYS AS (cardinality(topics)) STORED;
