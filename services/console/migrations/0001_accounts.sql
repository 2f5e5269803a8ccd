-- Staff accounts of the console, their shops and roles, sessions and the login throttle.
CREATE TABLE users (
    user_id text PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    -- an argon2id PHC string: never the password
    password_hash text NOT NULL,
    locale text NOT NULL DEFAULT 'vi' CHECK (locale IN ('vi', 'en')),
    platform_operator boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    disabled_at timestamptz
);
CREATE UNIQUE INDEX users_by_email ON users (lower(email));

CREATE TABLE memberships (
    user_id text NOT NULL REFERENCES users,
    shop_id text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'marketer', 'support', 'read_only')),
    added_by text,
    added_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, shop_id)
);
CREATE INDEX memberships_by_shop ON memberships (shop_id);

CREATE TABLE invitations (
    invitation_id text PRIMARY KEY,
    shop_id text NOT NULL,
    email text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'marketer', 'support', 'read_only')),
    token_sha256 text NOT NULL UNIQUE,
    invited_by text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at timestamptz
);

-- Only the sha256 of the cookie's value is kept: a copy of the table signs nobody in.
CREATE TABLE sessions (
    session_sha256 text PRIMARY KEY,
    user_id text NOT NULL REFERENCES users ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Failed sign-ins per 'email:<sha256 of lower(email)>' and per 'addr:<client address>'.
CREATE TABLE login_throttle (
    bucket text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    failures integer NOT NULL
);

-- What staff did, append-only; ids only, no personal data.
CREATE TABLE actions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL,
    user_id text NOT NULL,
    shop_id text,
    action text NOT NULL,
    target text,
    detail jsonb
);

CREATE FUNCTION refuse_action_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console actions are append-only';
END $$;

CREATE TRIGGER actions_append_only BEFORE UPDATE OR DELETE ON actions
    FOR EACH ROW EXECUTE FUNCTION refuse_action_change();
