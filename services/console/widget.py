"""Use cases of the widget's settings: a shop's signing secrets and its allowed origins."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg

from services.console.adapters import widget_settings
from services.console.adapters.widget_settings import WidgetSecret
from services.console.domain.origins import parse_origin


async def make_widget_secret(
    pool: asyncpg.Pool, *, shop_id: str, by: str, now: datetime
) -> WidgetSecret:
    """A new secret for the shop, active next to any earlier one until that is revoked."""
    secret = widget_settings.new_secret(shop_id)
    async with pool.acquire() as conn:
        await widget_settings.add_secret(conn, secret, by=by, now=now)
    return secret


async def allow_origins(
    pool: asyncpg.Pool, *, shop_id: str, origins: Iterable[str], by: str, now: datetime
) -> frozenset[str]:
    """Add storefront origins to the shop's list; raises OriginRefused before writing any."""
    wanted = frozenset(parse_origin(origin) for origin in origins)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('console.widget:' || $1))", shop_id
        )
        merged = await widget_settings.allowed_origins(conn, shop_id) | wanted
        await widget_settings.set_allowed_origins(conn, shop_id, merged, by=by, now=now)
    return merged


async def remove_origin(
    pool: asyncpg.Pool, *, shop_id: str, origin: str, by: str, now: datetime
) -> frozenset[str]:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('console.widget:' || $1))", shop_id
        )
        kept = await widget_settings.allowed_origins(conn, shop_id) - {origin}
        await widget_settings.set_allowed_origins(conn, shop_id, kept, by=by, now=now)
    return kept
