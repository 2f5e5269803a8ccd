"""Earn's projection of customer tiers (from loyalty.tiers): the multiplier at a given time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.earn.adapters.ledger import SCHEMA
from shared.db import Connection

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class TierSeen:
    """A tier.changed event as earn keeps it."""

    event_id: str
    shop_id: str
    customer_id: str
    tier: str
    multiplier: Decimal
    effective_at: datetime


async def record_tiers(conn: Connection, changes: Sequence[TierSeen]) -> None:
    if not changes:
        return
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customer_tiers
                (event_id, shop_id, customer_id, tier, multiplier, effective_at)
            SELECT * FROM unnest($1::text[], $6::text[], $2::text[], $3::text[], $4::numeric[],
                                 $5::timestamptz[])
            ON CONFLICT (event_id) DO NOTHING""",
        [c.event_id for c in changes],
        [c.customer_id for c in changes],
        [c.tier for c in changes],
        [c.multiplier for c in changes],
        [c.effective_at for c in changes],
        [c.shop_id for c in changes],
    )


async def multipliers_at(
    conn: Connection, paid: Sequence[tuple[str, str, datetime]]
) -> list[Decimal]:
    """For each (shop, customer, paid at): the multiplier of the customer's tier at the shop
    in force just before; 1 when earn knows of no tier change by then."""
    if not paid:
        return []
    # Only orders whose customer had a tier by then come back: most have none, and a row each
    # to say so cost a record decoded per order. One shop's batch (the common case) sends its
    # shop once, as a value the lookup compares with, rather than an array to unnest.
    shops = {shop for shop, _, _ in paid}
    one_shop = len(shops) == 1
    rows = await conn.fetch(
        f"""SELECT o.n, t.multiplier
            FROM unnest({"" if one_shop else "$3::text[], "}$1::text[], $2::timestamptz[])
                 WITH ORDINALITY AS o({"" if one_shop else "shop_id, "}customer_id, at, n)
            JOIN LATERAL (
                SELECT multiplier FROM {SCHEMA}.customer_tiers c
                WHERE c.shop_id = {"$3::text" if one_shop else "o.shop_id"}
                  AND c.customer_id = o.customer_id AND c.effective_at < o.at
                ORDER BY c.effective_at DESC, c.seq DESC LIMIT 1) t ON true""",
        [customer for _, customer, _ in paid],
        [at for _, _, at in paid],
        shops.pop() if one_shop else [shop for shop, _, _ in paid],
    )
    multipliers = [ONE] * len(paid)
    for row in rows:
        multipliers[row["n"] - 1] = row["multiplier"]
    return multipliers
