"""SQL of the shops schema: shops, programme versions, API keys and the audit trail."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from services.shops.records import ApiKey, AuditEntry, Shop, Version
from shared.db import Connection

SCHEMA: Final = "shops"
_KEY_COLUMNS: Final = "key_id, shop_id, prefix, scopes, created_at, created_by, revoked_at"
_VERSION_COLUMNS: Final = (
    "shop_id, kind, version, effective_from, toml, published_by, published_at, reason"
)


async def insert_shop(conn: Connection, shop: Shop) -> bool:
    """False when a shop of that id exists already."""
    status = await conn.execute(
        f"""INSERT INTO {SCHEMA}.shops
                (shop_id, name, currency, time_zone, locale, coalition_id, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (shop_id) DO NOTHING""",
        shop.shop_id,
        shop.name,
        shop.currency,
        shop.time_zone,
        shop.locale,
        shop.coalition_id,
        shop.created_at,
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
