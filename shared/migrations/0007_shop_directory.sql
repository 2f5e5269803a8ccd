-- Every service's projection of loyalty.shops: the programme versions and API keys of every
-- shop, as the shops service announced them. Only key hashes travel and are kept.
CREATE TABLE shop_programmes (
    shop_id text NOT NULL,
    kind text NOT NULL,
    version integer NOT NULL,
    effective_from timestamptz NOT NULL,
    toml text NOT NULL,
    published_by text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (shop_id, kind, version)
);

CREATE TABLE shop_keys (
    key_id text PRIMARY KEY,
    shop_id text,  -- NULL: a platform operator's key
    prefix text NOT NULL,
    key_sha256 text NOT NULL UNIQUE,
    scopes text[] NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);
