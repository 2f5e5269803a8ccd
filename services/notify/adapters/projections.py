"""Notify's own view of customers, orders, tiers and points, written set-based per batch.

A customer is a member of one shop: every row and every key is (shop_id, customer_id).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.db import Connection

SCHEMA = "notify"

# (shop_id, customer_id): the same customer id at two shops is two customers.
Member = tuple[str, str]

# The members given as two arrays ($1 shops, $2 customers), for `(shop_id, customer_id) IN`.
_MEMBERS = "SELECT * FROM unnest($1::text[], $2::text[])"


def member_arrays(members: Sequence[Member]) -> tuple[list[str], list[str]]:
    """Shops and customers as two parallel lists, sorted and without repeats."""
    unique = sorted(set(members))
    return [m[0] for m in unique], [m[1] for m in unique]


# Columns a customer event may set, with the SQL cast of their JSON text.
_CUSTOMER_FIELDS = {
    "email": "text",
    "name": "text",
    "locale": "text",
    "time_zone": "text",
    "birthday": "date",
    "consent_email": "boolean",
    "consent_push": "boolean",
    "signed_up_at": "timestamptz",
}


@dataclass(frozen=True, slots=True)
class CustomerPatch:
    """The fields one customer's events of a batch set, folded in event order."""

    shop_id: str
    customer_id: str
    fields: dict[str, Any]
    at: datetime

    @property
    def member(self) -> Member:
        return (self.shop_id, self.customer_id)


async def patch_customers(conn: Connection, patches: Sequence[CustomerPatch]) -> None:
    """Create unknown customers, then set exactly the fields each patch carries."""
    if not patches:
        return
    document = json.dumps(
        [
            {
                "shop_id": p.shop_id,
                "customer_id": p.customer_id,
                "patch": p.fields,
                "at": p.at.isoformat(),
            }
            for p in patches
        ]
    )
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customers (shop_id, customer_id, updated_at)
            SELECT p.shop_id, p.customer_id, p.at
            FROM jsonb_to_recordset($1::jsonb)
                 AS p(shop_id text, customer_id text, patch jsonb, at timestamptz)
            ORDER BY p.shop_id, p.customer_id
            ON CONFLICT (shop_id, customer_id) DO NOTHING""",
        document,
    )
    # Rows locked in the order `zones_held` locks them: the two never wait for each other
    # in a cycle.
    await conn.execute(
        f"""SELECT 1 FROM {SCHEMA}.customers WHERE (shop_id, customer_id) IN ({_MEMBERS})
            ORDER BY shop_id, customer_id FOR NO KEY UPDATE""",
        *member_arrays([p.member for p in patches]),
    )
    sets = [
        f"{name} = CASE WHEN p.patch ? '{name}' THEN (p.patch->>'{name}')::{cast} ELSE c.{name} END"
        for name, cast in _CUSTOMER_FIELDS.items()
    ]
    sets.append(
        "push_subscription = CASE WHEN p.patch ? 'push_subscription' "
        "THEN nullif(p.patch->'push_subscription', 'null'::jsonb) ELSE c.push_subscription END"
    )
    await conn.execute(
        f"""UPDATE {SCHEMA}.customers c SET {", ".join(sets)}, updated_at = p.at
            FROM jsonb_to_recordset($1::jsonb)
                 AS p(shop_id text, customer_id text, patch jsonb, at timestamptz)
            WHERE c.shop_id = p.shop_id AND c.customer_id = p.customer_id""",
        document,
    )


async def push_subscribers(conn: Connection, members: Sequence[Member]) -> set[Member]:
    """Which of these customers have a Web Push subscription."""
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id FROM {SCHEMA}.customers
            WHERE (shop_id, customer_id) IN ({_MEMBERS}) AND push_subscription IS NOT NULL""",
        *member_arrays(members),
    )
    return {(r["shop_id"], r["customer_id"]) for r in rows}


async def zones_held(
    conn: Connection, members: Sequence[Member], now: datetime
) -> dict[Member, str]:
    """The customers' time zones (those known), their rows held until the transaction ends
    (created when unknown): a sign-up setting a zone waits for the transaction, or the
    transaction for it, so digests planned here and the sign-up's re-keying see each other."""
    shops, customers = member_arrays(members)
    if not customers:
        return {}
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customers (shop_id, customer_id, updated_at)
            SELECT s, c, $3 FROM unnest($1::text[], $2::text[]) AS m(s, c) ORDER BY s, c
            ON CONFLICT (shop_id, customer_id) DO NOTHING""",
        shops,
        customers,
        now,
    )
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id, time_zone FROM {SCHEMA}.customers
            WHERE (shop_id, customer_id) IN ({_MEMBERS})
            ORDER BY shop_id, customer_id FOR SHARE""",
        shops,
        customers,
    )
    return {
        (r["shop_id"], r["customer_id"]): r["time_zone"] for r in rows if r["time_zone"] is not None
    }


async def record_orders(
    conn: Connection, orders: Sequence[tuple[str, str, str, datetime]]
) -> dict[Member, datetime]:
    """Orders (shop, id, customer, time) not seen before; returns each customer's latest new
    order."""
    if not orders:
        return {}
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.orders (shop_id, order_id, customer_id, ordered_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
            ON CONFLICT (shop_id, order_id) DO NOTHING
            RETURNING shop_id, customer_id, ordered_at""",
        [o[0] for o in orders],
        [o[1] for o in orders],
        [o[2] for o in orders],
        [o[3] for o in orders],
    )
    counts: dict[Member, tuple[int, datetime, datetime]] = {}
    for r in rows:
        member, at = (r["shop_id"], r["customer_id"]), r["ordered_at"]
        n, first, last = counts.get(member, (0, at, at))
        counts[member] = (n + 1, min(first, at), max(last, at))
    members = sorted(counts)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customer_orders AS o
                (shop_id, customer_id, order_count, first_order_at, last_order_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::timestamptz[],
                                 $5::timestamptz[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET order_count = o.order_count + excluded.order_count,
                   first_order_at = least(o.first_order_at, excluded.first_order_at),
                   last_order_at = greatest(o.last_order_at, excluded.last_order_at)""",
        [m[0] for m in members],
        [m[1] for m in members],
        [counts[m][0] for m in members],
        [counts[m][1] for m in members],
        [counts[m][2] for m in members],
    )
    return {m: counts[m][2] for m in members}


async def set_tiers(
    conn: Connection, tiers: Mapping[Member, tuple[str, str, list[str], datetime]]
) -> None:
    """customer -> (tier, display name, benefits, changed at); the latest change wins."""
    if not tiers:
        return
    members = sorted(tiers)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.tiers AS t
                (shop_id, customer_id, tier, tier_name, benefits, changed_at)
            SELECT s, c, tier, name, benefits::jsonb, at
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                        $6::timestamptz[])
                 AS u(s, c, tier, name, benefits, at)
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET tier = excluded.tier, tier_name = excluded.tier_name,
                   benefits = excluded.benefits, changed_at = excluded.changed_at
               WHERE t.changed_at <= excluded.changed_at""",
        [m[0] for m in members],
        [m[1] for m in members],
        [tiers[m][0] for m in members],
        [tiers[m][1] for m in members],
        [json.dumps(tiers[m][2]) for m in members],
        [tiers[m][3] for m in members],
    )


async def set_balances(conn: Connection, balances: Mapping[Member, tuple[int, datetime]]) -> None:
    """customer -> (balance, as of); an older balance never overwrites a newer one."""
    if not balances:
        return
    members = sorted(balances)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.points AS p (shop_id, customer_id, balance, updated_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET balance = excluded.balance, updated_at = excluded.updated_at
               WHERE p.updated_at <= excluded.updated_at""",
        [m[0] for m in members],
        [m[1] for m in members],
        [balances[m][0] for m in members],
        [balances[m][1] for m in members],
    )


async def unsubscribe(
    conn: Connection, shop_id: str, customer_id: str, channel: str, at: datetime
) -> bool:
    """Withdraw consent on one channel at one shop; False for a customer notify does not know."""
    column = "email" if channel == "email" else "push"
    result = await conn.execute(
        f"""UPDATE {SCHEMA}.customers
            SET consent_{column} = false, unsubscribed_{column}_at = $3, updated_at = $3
            WHERE shop_id = $1 AND customer_id = $2""",
        shop_id,
        customer_id,
        at,
    )
    return result != "UPDATE 0"


async def forget_push_subscription(
    conn: Connection, shop_id: str, customer_id: str, at: datetime
) -> None:
    """The push service says the subscription is gone (404/410): never use it again."""
    await conn.execute(
        f"""UPDATE {SCHEMA}.customers SET push_subscription = NULL, updated_at = $3
            WHERE shop_id = $1 AND customer_id = $2""",
        shop_id,
        customer_id,
        at,
    )
