-- Coalitions: a coalition is a shop of kind 'coalition' (its programmes, keys and audit trail);
-- a shop's memberships are immutable versions, as programmes are. Only added to: every shop
-- that exists stays a shop standing alone.
ALTER TABLE shops ADD COLUMN kind text NOT NULL DEFAULT 'shop'
    CHECK (kind IN ('shop', 'coalition'));
-- shops.coalition_id (there since 0001) is the coalition of the shop's latest membership version.

CREATE TABLE coalition_memberships (
    shop_id text NOT NULL REFERENCES shops (shop_id),
    version integer NOT NULL CHECK (version > 0),
    coalition_id text REFERENCES shops (shop_id),  -- NULL: stands alone from effective_from
    effective_from timestamptz NOT NULL,
    published_by text NOT NULL,
    published_at timestamptz NOT NULL,
    reason text NOT NULL DEFAULT '',
    PRIMARY KEY (shop_id, version),
    CHECK (coalition_id IS DISTINCT FROM shop_id)
);

CREATE INDEX coalition_members ON coalition_memberships (coalition_id, effective_from);

CREATE TRIGGER coalition_memberships_immutable BEFORE UPDATE OR DELETE ON coalition_memberships
    FOR EACH ROW EXECUTE FUNCTION refuse_version_change();
