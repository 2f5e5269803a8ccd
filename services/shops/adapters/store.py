"""SQL of the shops schema: shops, programme versions, memberships of coalitions, API keys and
the audit trail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from services.shops.records import ApiKey, AuditEntry, Member, Membership, Shop, Version
from shared.db import Connection

SCHEMA: Final = "shops"
_KEY_COLUMNS: Final = "key_id, shop_id, prefix, scopes, created_at, created_by, revoked_at"
_VERSION_COLUMNS: Final = (
    "shop_id, kind, version, effective_from, toml, published_by, published_at, reason"
)
_MEMBERSHIP_COLUMNS: Final = (
    "shop_id, version, coalition_id, effective_from, published_by, published_at, reason"
)


async def insert_shop(conn: Connection, shop: Shop) -> bool:
    """False when a shop of that id exists already."""
    status = await conn.execute(
        f"""INSERT INTO {SCHEMA}.shops
                (shop_id, name, currency, time_zone, locale, coalition_id, created_at, kind)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (shop_id) DO NOTHING""",
        shop.shop_id,
        shop.name,
        shop.currency,
        shop.time_zone,
        shop.locale,
        shop.coalition_id,
        shop.created_at,
        shop.kind,
    )
    return bool(status == "INSERT 0 1")


async def shop(conn: Connection, shop_id: str, *, lock: bool = False) -> Shop | None:
    # FOR UPDATE serialises publications of one shop: version numbers are taken in turn.
    row = await conn.fetchrow(
        f"SELECT * FROM {SCHEMA}.shops WHERE shop_id = $1{' FOR UPDATE' if lock else ''}",
        shop_id,
    )
    return None if row is None else Shop(**dict(row))


async def shops(conn: Connection) -> list[Shop]:
    rows = await conn.fetch(f"SELECT * FROM {SCHEMA}.shops ORDER BY shop_id")
    return [Shop(**dict(r)) for r in rows]


async def next_version(conn: Connection, shop_id: str, kind: str) -> int:
    found = await conn.fetchval(
        f"SELECT max(version) FROM {SCHEMA}.programme_versions WHERE shop_id = $1 AND kind = $2",
        shop_id,
        kind,
    )
    return int(found or 0) + 1


async def insert_version(conn: Connection, version: Version) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.programme_versions ({_VERSION_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        version.shop_id,
        version.kind,
        version.version,
        version.effective_from,
        version.toml,
        version.published_by,
        version.published_at,
        version.reason,
    )


async def versions(conn: Connection, shop_id: str, kind: str) -> list[Version]:
    rows = await conn.fetch(
        f"""SELECT {_VERSION_COLUMNS} FROM {SCHEMA}.programme_versions
            WHERE shop_id = $1 AND kind = $2 ORDER BY version""",
        shop_id,
        kind,
    )
    return [Version(**dict(r)) for r in rows]


async def version(conn: Connection, shop_id: str, kind: str, number: int) -> Version | None:
    row = await conn.fetchrow(
        f"""SELECT {_VERSION_COLUMNS} FROM {SCHEMA}.programme_versions
            WHERE shop_id = $1 AND kind = $2 AND version = $3""",
        shop_id,
        kind,
        number,
    )
    return None if row is None else Version(**dict(row))


async def next_membership(conn: Connection, shop_id: str) -> int:
    found = await conn.fetchval(
        f"SELECT max(version) FROM {SCHEMA}.coalition_memberships WHERE shop_id = $1", shop_id
    )
    return int(found or 0) + 1


async def membership(conn: Connection, shop_id: str, number: int) -> Membership | None:
    row = await conn.fetchrow(
        f"""SELECT {_MEMBERSHIP_COLUMNS} FROM {SCHEMA}.coalition_memberships
            WHERE shop_id = $1 AND version = $2""",
        shop_id,
        number,
    )
    return None if row is None else Membership(**dict(row))


async def insert_membership(conn: Connection, m: Membership) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.coalition_memberships ({_MEMBERSHIP_COLUMNS})
            VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        m.shop_id,
        m.version,
        m.coalition_id,
        m.effective_from,
        m.published_by,
        m.published_at,
        m.reason,
    )


async def set_current_coalition(conn: Connection, shop_id: str, coalition_id: str | None) -> None:
    """shops.coalition_id: the coalition of the shop's latest membership version."""
    await conn.execute(
        f"UPDATE {SCHEMA}.shops SET coalition_id = $2 WHERE shop_id = $1", shop_id, coalition_id
    )


async def memberships(conn: Connection, shop_id: str) -> list[Membership]:
    rows = await conn.fetch(
        f"""SELECT {_MEMBERSHIP_COLUMNS} FROM {SCHEMA}.coalition_memberships
            WHERE shop_id = $1 ORDER BY version""",
        shop_id,
    )
    return [Membership(**dict(r)) for r in rows]


async def members(conn: Connection, coalition_id: str) -> list[Member]:
    """The shops whose latest membership version names the coalition, by shop."""
    rows = await conn.fetch(
        f"""SELECT shop_id, effective_from AS since FROM (
                SELECT DISTINCT ON (shop_id) shop_id, coalition_id, effective_from
                FROM {SCHEMA}.coalition_memberships
                WHERE shop_id IN (SELECT shop_id FROM {SCHEMA}.coalition_memberships
                                  WHERE coalition_id = $1)
                ORDER BY shop_id, version DESC
            ) latest WHERE coalition_id = $1 ORDER BY shop_id""",
        coalition_id,
    )
    return [Member(**dict(r)) for r in rows]


async def insert_key(conn: Connection, key: ApiKey, *, sha256: str) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.api_keys
                (key_id, shop_id, prefix, key_sha256, scopes, created_at, created_by)
            VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        key.key_id,
        key.shop_id,
        key.prefix,
        sha256,
        list(key.scopes),
        key.created_at,
        key.created_by,
    )


async def keys(conn: Connection, shop_id: str | None) -> list[ApiKey]:
    """A shop's keys, or the platform's (shop_id None), oldest first."""
    rows = await conn.fetch(
        f"""SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys
            WHERE shop_id IS NOT DISTINCT FROM $1 ORDER BY created_at, key_id""",
        shop_id,
    )
    return [ApiKey(**dict(r)) for r in rows]


async def key(conn: Connection, shop_id: str | None, key_id: str) -> ApiKey | None:
    row = await conn.fetchrow(
        f"""SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys
            WHERE key_id = $1 AND shop_id IS NOT DISTINCT FROM $2 FOR UPDATE""",
        key_id,
        shop_id,
    )
    return None if row is None else ApiKey(**dict(row))


async def key_by_hash(conn: Connection, sha256: str) -> ApiKey | None:
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM {SCHEMA}.api_keys WHERE key_sha256 = $1", sha256
    )
    return None if row is None else ApiKey(**dict(row))


async def key_hash(conn: Connection, key_id: str) -> str:
    return str(
        await conn.fetchval(f"SELECT key_sha256 FROM {SCHEMA}.api_keys WHERE key_id = $1", key_id)
    )


async def revoke_key(conn: Connection, key_id: str, at: datetime) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL",
        key_id,
        at,
    )


async def audit(
    conn: Connection, *, at: datetime, actor: str, shop_id: str | None, action: str, **detail: Any
) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.audit (at, actor, shop_id, action, detail)
            VALUES ($1, $2, $3, $4, $5::jsonb)""",
        at,
        actor,
        shop_id,
        action,
        json.dumps(detail, default=str),
    )


async def audit_entries(conn: Connection, shop_id: str | None, *, limit: int) -> list[AuditEntry]:
    """The latest entries of a shop (or of the platform's keys), newest first."""
    rows = await conn.fetch(
        f"""SELECT id, at, actor, shop_id, action, detail FROM {SCHEMA}.audit
            WHERE shop_id IS NOT DISTINCT FROM $1 ORDER BY id DESC LIMIT $2""",
        shop_id,
        limit,
    )
    return [AuditEntry(**{**dict(r), "detail": json.loads(r["detail"])}) for r in rows]
