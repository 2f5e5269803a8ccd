-- Customer search for the console: a diacritics-folded `search_text` (name, email, id), so
-- that "nguyen thi" finds "Nguyễn Thị". services/notify/domain/search.py holds its Python twin,
-- which an integration test checks against fold_vi over every Vietnamese letter.
--
-- normalize(…, NFC) first, so decomposed input folds too; đ/Đ have no decomposition and are in
-- the map. Adding a stored generated column rewrites the table (docs/operations.md).
CREATE FUNCTION fold_vi(t text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$
  SELECT lower(translate(normalize(t, NFC),
   'àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđÀÁẠẢÃÂẦẤẬẨẪĂẰẮẶẲẴÈÉẸẺẼÊỀẾỆỂỄÌÍỊỈĨÒÓỌỎÕÔỒỐỘỔỖƠỜỚỢỞỠÙÚỤỦŨƯỪỨỰỬỮỲÝỴỶỸĐ',
   'aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyydAAAAAAAAAAAAAAAAAEEEEEEEEEEEIIIIIOOOOOOOOOOOOOOOOOUUUUUUUUUUUYYYYYD'))
$$;

ALTER TABLE customers ADD COLUMN search_text text GENERATED ALWAYS AS
    (fold_vi(coalesce(name, '') || ' ' || coalesce(email, '') || ' ' || customer_id)) STORED;

CREATE INDEX customers_by_email ON customers (shop_id, lower(email));

-- pg_trgm is a trusted extension (PostgreSQL 13+): the database's owner may create it, here in
-- this schema (the first of the runner's search_path). Where the service's role may not, or the
-- server lacks the contrib modules, there is no trigram index: the search then reads the shop's
-- rows (docs/notify.md says so).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN insufficient_privilege OR undefined_file OR feature_not_supported THEN
    RAISE NOTICE 'pg_trgm is not available (%): customer search without a trigram index', SQLERRM;
END
$$;

DO $$
DECLARE
    trgm_schema text;
BEGIN
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        -- Qualified: the extension may live in a schema outside the runner's search_path.
        EXECUTE format(
            'CREATE INDEX customers_search ON customers USING gin (search_text %I.gin_trgm_ops)',
            trgm_schema);
    END IF;
END
$$;
