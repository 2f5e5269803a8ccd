"""Whether the facts know a shop or a tier a report is asked for."""

from __future__ import annotations

from shared.db import Connection


async def known_shop(conn: Connection, schema: str, shop: str) -> bool:
    found = await conn.fetchval(
        f"""SELECT EXISTS (SELECT FROM {schema}.customers WHERE shop_id = $1)
                OR EXISTS (SELECT FROM {schema}.orders WHERE shop_id = $1)""",
        shop,
    )
    return bool(found)


async def known_tier(conn: Connection, schema: str, tier: str) -> bool:
    found = await conn.fetchval(
        f"""SELECT EXISTS (SELECT FROM {schema}.tier_changes WHERE tier = $1)
                OR EXISTS (SELECT FROM {schema}.memberships WHERE tier = $1)""",
        tier,
    )
    return bool(found)
