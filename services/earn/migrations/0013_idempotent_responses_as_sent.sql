-- A replayed response is the stored body byte for byte: jsonb would keep neither the order of
-- its keys nor its spacing.
ALTER TABLE idempotency_keys ALTER COLUMN response TYPE text USING response::text;
