-- Shops, their programmes as immutable versions, their API keys, and who changed what.
CREATE TABLE shops (
    shop_id text PRIMARY KEY,
    name text NOT NULL,
    currency text NOT NULL,
    time_zone text NOT NULL,
    locale text NOT NULL,
    coalition_id text,
    created_at timestamptz NOT NULL
);

-- Versions are numbered 1, 2, ... per (shop, kind) and never change once written.
CREATE TABLE programme_versions (
    shop_id text NOT NULL REFERENCES shops (shop_id),
    kind text NOT NULL CHECK (kind IN ('earn', 'tiers', 'messages')),
    version integer NOT NULL CHECK (version > 0),
    effective_from timestamptz NOT NULL,
    toml text NOT NULL,
    published_by text NOT NULL,
    published_at timestamptz NOT NULL,
    reason text NOT NULL DEFAULT '',
    PRIMARY KEY (shop_id, kind, version)
);

CREATE FUNCTION refuse_version_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'programme versions are immutable: publish a new version instead';
END $$;

CREATE TRIGGER programme_versions_immutable BEFORE UPDATE OR DELETE ON programme_versions
    FOR EACH ROW EXECUTE FUNCTION refuse_version_change();

-- Only the sha256 of a key is kept: the secret is shown once, when it is made.
CREATE TABLE api_keys (
    key_id text PRIMARY KEY,
    shop_id text REFERENCES shops (shop_id),  -- NULL: a platform operator's key
    prefix text NOT NULL,
    key_sha256 text NOT NULL UNIQUE,
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    revoked_at timestamptz,
    CHECK ((shop_id IS NULL) = ('platform' = ANY (scopes)))
);

CREATE INDEX api_keys_of_shop ON api_keys (shop_id, created_at);

CREATE TABLE audit (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    shop_id text,
    action text NOT NULL,
    detail jsonb NOT NULL
);

CREATE INDEX audit_of_shop ON audit (shop_id, id);

-- The shop that single-shop deployments always had: it keeps the programme files until a
-- version is published for it.
INSERT INTO shops (shop_id, name, currency, time_zone, locale, created_at)
VALUES ('default', 'Default shop', 'VND', 'Asia/Ho_Chi_Minh', 'vi-VN', now());
