"""SQL of the widget's settings per shop: allowed storefront origins and signing secrets."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from services.console.adapters.accounts import SCHEMA
from shared.db import Connection


@dataclass(frozen=True)
class WidgetSecret:
    shop_id: str
    kid: str
    secret: str  # shown once, when made


def new_secret(shop_id: str) -> WidgetSecret:
    """`lws_` and 43 characters of base64url (256 bits); the kid names it in tokens' headers."""
    return WidgetSecret(shop_id, f"k{secrets.token_hex(4)}", f"lws_{secrets.token_urlsafe(32)}")


async def add_secret(conn: Connection, secret: WidgetSecret, *, by: str, now: datetime) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.widget_secrets (shop_id, kid, secret, created_at, created_by)
            VALUES ($1, $2, $3, $4, $5)""",
        secret.shop_id,
        secret.kid,
        secret.secret,
        now,
        by,
    )


async def revoke_secret(conn: Connection, *, shop_id: str, kid: str, now: datetime) -> bool:
    done = await conn.execute(
        f"""UPDATE {SCHEMA}.widget_secrets SET revoked_at = $3
            WHERE shop_id = $1 AND kid = $2 AND revoked_at IS NULL""",
        shop_id,
        kid,
        now,
    )
    return bool(done == "UPDATE 1")


async def active_secrets(conn: Connection, shop_id: str) -> dict[str, str]:
    """kid -> secret of the shop's secrets not revoked (two during a rotation)."""
    rows = await conn.fetch(
        f"""SELECT kid, secret FROM {SCHEMA}.widget_secrets
            WHERE shop_id = $1 AND revoked_at IS NULL""",
        shop_id,
    )
    return {row["kid"]: row["secret"] for row in rows}


async def allowed_origins(conn: Connection, shop_id: str) -> frozenset[str]:
    found = await conn.fetchval(
        f"SELECT allowed_origins FROM {SCHEMA}.widget_settings WHERE shop_id = $1", shop_id
    )
    return frozenset(found or ())


async def set_allowed_origins(
    conn: Connection, shop_id: str, origins: frozenset[str], *, by: str, now: datetime
) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.widget_settings (shop_id, allowed_origins, updated_at, updated_by)
            VALUES ($1, $2, $3, $4)
            ON CONFLICT (shop_id) DO UPDATE SET allowed_origins = excluded.allowed_origins,
                updated_at = excluded.updated_at, updated_by = excluded.updated_by""",
        shop_id,
        sorted(origins),
        now,
        by,
    )


@dataclass(frozen=True)
class SecretInUse:
    kid: str
    created_at: datetime
    created_by: str


async def secrets_in_use(conn: Connection, shop_id: str) -> list[SecretInUse]:
    """The shop's active secrets, newest first, without the secrets themselves."""
    rows = await conn.fetch(
        f"""SELECT kid, created_at, created_by FROM {SCHEMA}.widget_secrets
            WHERE shop_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, kid""",
        shop_id,
    )
    return [SecretInUse(r["kid"], r["created_at"], r["created_by"]) for r in rows]


async def revoke_made_by(conn: Connection, shop_id: str, *, by: str, now: datetime) -> None:
    """Revoke every active secret of the shop that `by` made (the demo's earlier runs')."""
    await conn.execute(
        f"""UPDATE {SCHEMA}.widget_secrets SET revoked_at = $3
            WHERE shop_id = $1 AND created_by = $2 AND revoked_at IS NULL""",
        shop_id,
        by,
        now,
    )
