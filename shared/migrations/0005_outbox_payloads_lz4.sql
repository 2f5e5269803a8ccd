-- The payloads of an outbox row (hundreds of JSON messages that share their field names) are
-- compressed with LZ4: about a fifth of the write-ahead log per consumed event was these
-- arrays written out in full. LZ4 costs a fraction of pglz's CPU, which is why they were
-- stored uncompressed before (migration 0002). Rows written before keep their storage.
ALTER TABLE outbox
    ALTER COLUMN payloads SET STORAGE EXTENDED,
    ALTER COLUMN payloads SET COMPRESSION lz4;
