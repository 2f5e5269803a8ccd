"""Whether the facts know a shop or a tier a report is asked for."""

from __future__ import annotations

from shared.db import Connection


async def known_shop(conn: Connection, schema: str, shop: str) -> bool:
    """Whether a fact names the shop, or a membership names it as a coalition."""
    found = await conn.fetchval(
        f"""SELECT EXISTS (SELECT FROM {schema}.customers WHERE shop_id = $1)
                OR EXISTS (SELECT FROM {schema}.orders WHERE shop_id = $1)
                OR EXISTS (SELECT FROM {schema}.shop_memberships WHERE coalition_id = $1)""",
        shop,
    )
    return bool(found)


async def known_tier(conn: Connection, schema: str, tier: str, shop: str | None) -> bool:
    """Whether a customer (of the shop, if one is given) has had the tier; a member shop's
    customers have the tiers of its coalition's accounts (any coalition it was in)."""
    found = await conn.fetchval(
        f"""SELECT EXISTS (SELECT FROM {schema}.tier_changes
                           WHERE tier = $1 AND ($2::text IS NULL OR shop_id = $2
                                 OR shop_id IN (SELECT coalition_id FROM {schema}.shop_memberships
                                                WHERE shop_id = $2)))
                OR EXISTS (SELECT FROM {schema}.memberships
                           WHERE tier = $1 AND ($2::text IS NULL OR shop_id = $2))""",
        tier,
        shop,
    )
    return bool(found)
