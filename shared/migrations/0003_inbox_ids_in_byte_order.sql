-- Event ids are opaque: compare them byte by byte (collation "C") instead of by the database's
-- locale. Under a locale such as C.UTF-8 or en_US.UTF-8 every comparison of the inbox's key
-- went through strcoll; each batch inserts one key per event into this index.
-- Rebuilds the inbox's primary key index (the table itself is not rewritten).
ALTER TABLE inbox ALTER COLUMN event_id TYPE text COLLATE "C";

-- The outbox's arrays are written once and deleted within milliseconds: compressing them (the
-- topics and keys of hundreds of messages compress well) cost CPU on every write.
ALTER TABLE outbox
    ALTER COLUMN topics SET STORAGE EXTERNAL,
    ALTER COLUMN keys SET STORAGE EXTERNAL,
    ALTER COLUMN header_names SET STORAGE EXTERNAL,
    ALTER COLUMN header_values SET STORAGE EXTERNAL,
    ALTER COLUMN header_counts SET STORAGE EXTERNAL;
