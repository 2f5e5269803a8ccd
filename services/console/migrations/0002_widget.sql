-- The member widget: which storefront origins may call the widget API, and the secrets with
-- which a shop's backend signs its customers' tokens. The console verifies the tokens, so it
-- keeps the secrets themselves (an HMAC cannot be checked against a hash); they never leave
-- this schema and are never put on Kafka.
CREATE TABLE widget_settings (
    shop_id text PRIMARY KEY,
    -- exact scheme://host[:port], no wildcard
    allowed_origins text[] NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL,
    updated_by text NOT NULL
);

CREATE TABLE widget_secrets (
    shop_id text NOT NULL,
    kid text NOT NULL,
    secret text NOT NULL,
    created_at timestamptz NOT NULL,
    created_by text NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (shop_id, kid)
);
