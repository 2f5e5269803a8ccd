"""Notify's own view of customers, orders, tiers and points, written set-based per batch."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.db import Connection

SCHEMA = "notify"

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

    customer_id: str
    fields: dict[str, Any]
    at: datetime


async def patch_customers(conn: Connection, patches: Sequence[CustomerPatch]) -> None:
    """Create unknown customers, then set exactly the fields each patch carries."""
    if not patches:
        return
    document = json.dumps(
        [{"customer_id": p.customer_id, "patch": p.fields, "at": p.at.isoformat()} for p in patches]
    )
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customers (customer_id, updated_at)
            SELECT p.customer_id, p.at
            FROM jsonb_to_recordset($1::jsonb) AS p(customer_id text, patch jsonb, at timestamptz)
            ORDER BY p.customer_id
            ON CONFLICT (customer_id) DO NOTHING""",
        document,
    )
    # Rows locked in the order `zones_held` locks them: the two never wait for each other
    # in a cycle.
    await conn.execute(
        f"""SELECT 1 FROM {SCHEMA}.customers WHERE customer_id = ANY($1::text[])
            ORDER BY customer_id FOR NO KEY UPDATE""",
        sorted({p.customer_id for p in patches}),
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
            FROM jsonb_to_recordset($1::jsonb) AS p(customer_id text, patch jsonb, at timestamptz)
            WHERE c.customer_id = p.customer_id""",
        document,
    )


async def push_subscribers(conn: Connection, customer_ids: Sequence[str]) -> set[str]:
    """Which of these customers have a Web Push subscription."""
    rows = await conn.fetch(
        f"""SELECT customer_id FROM {SCHEMA}.customers
            WHERE customer_id = ANY($1::text[]) AND push_subscription IS NOT NULL""",
        list(set(customer_ids)),
    )
    return {r["customer_id"] for r in rows}


async def zones_held(
    conn: Connection, customer_ids: Sequence[str], now: datetime
) -> dict[str, str]:
    """The customers' time zones (those known), their rows held until the transaction ends
    (created when unknown): a sign-up setting a zone waits for the transaction, or the
    transaction for it, so digests planned here and the sign-up's re-keying see each other."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customers (customer_id, updated_at)
            SELECT c, $2 FROM unnest($1::text[]) AS c ORDER BY c
            ON CONFLICT (customer_id) DO NOTHING""",
        ids,
        now,
    )
    rows = await conn.fetch(
        f"""SELECT customer_id, time_zone FROM {SCHEMA}.customers
            WHERE customer_id = ANY($1::text[]) ORDER BY customer_id FOR SHARE""",
        ids,
    )
    return {r["customer_id"]: r["time_zone"] for r in rows if r["time_zone"] is not None}


async def record_orders(
    conn: Connection, orders: Sequence[tuple[str, str, datetime]]
) -> dict[str, datetime]:
    """Orders (id, customer, time) not seen before; returns each customer's latest new order."""
    if not orders:
        return {}
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.orders (order_id, customer_id, ordered_at)
            SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
            ON CONFLICT (order_id) DO NOTHING RETURNING customer_id, ordered_at""",
        [o[0] for o in orders],
        [o[1] for o in orders],
        [o[2] for o in orders],
    )
    counts: dict[str, tuple[int, datetime, datetime]] = {}
    for r in rows:
        n, first, last = counts.get(r["customer_id"], (0, r["ordered_at"], r["ordered_at"]))
        counts[r["customer_id"]] = (n + 1, min(first, r["ordered_at"]), max(last, r["ordered_at"]))
    customers = sorted(counts)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.customer_orders AS o
                (customer_id, order_count, first_order_at, last_order_at)
            SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::timestamptz[])
            ON CONFLICT (customer_id) DO UPDATE
               SET order_count = o.order_count + excluded.order_count,
                   first_order_at = least(o.first_order_at, excluded.first_order_at),
                   last_order_at = greatest(o.last_order_at, excluded.last_order_at)""",
        customers,
        [counts[c][0] for c in customers],
        [counts[c][1] for c in customers],
        [counts[c][2] for c in customers],
    )
    return {c: counts[c][2] for c in customers}


async def set_tiers(
    conn: Connection, tiers: Mapping[str, tuple[str, str, list[str], datetime]]
) -> None:
    """customer -> (tier, display name, benefits, changed at); the latest change wins."""
    if not tiers:
        return
    customers = sorted(tiers)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.tiers AS t (customer_id, tier, tier_name, benefits, changed_at)
            SELECT c, tier, name, benefits::jsonb, at
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                 AS u(c, tier, name, benefits, at)
            ON CONFLICT (customer_id) DO UPDATE
               SET tier = excluded.tier, tier_name = excluded.tier_name,
                   benefits = excluded.benefits, changed_at = excluded.changed_at
               WHERE t.changed_at <= excluded.changed_at""",
        customers,
        [tiers[c][0] for c in customers],
        [tiers[c][1] for c in customers],
        [json.dumps(tiers[c][2]) for c in customers],
        [tiers[c][3] for c in customers],
    )


async def set_balances(conn: Connection, balances: Mapping[str, tuple[int, datetime]]) -> None:
    """customer -> (balance, as of); an older balance never overwrites a newer one."""
    if not balances:
        return
    customers = sorted(balances)
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.points AS p (customer_id, balance, updated_at)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::timestamptz[])
            ON CONFLICT (customer_id) DO UPDATE
               SET balance = excluded.balance, updated_at = excluded.updated_at
               WHERE p.updated_at <= excluded.updated_at""",
        customers,
        [balances[c][0] for c in customers],
        [balances[c][1] for c in customers],
    )


async def unsubscribe(conn: Connection, customer_id: str, channel: str, at: datetime) -> bool:
    """Withdraw consent on one channel; False for a customer notify does not know."""
    column = "email" if channel == "email" else "push"
    result = await conn.execute(
        f"""UPDATE {SCHEMA}.customers
            SET consent_{column} = false, unsubscribed_{column}_at = $2, updated_at = $2
            WHERE customer_id = $1""",
        customer_id,
        at,
    )
    return result != "UPDATE 0"


async def forget_push_subscription(conn: Connection, customer_id: str, at: datetime) -> None:
    """The push service says the subscription is gone (404/410): never use it again."""
    await conn.execute(
        f"""UPDATE {SCHEMA}.customers SET push_subscription = NULL, updated_at = $2
            WHERE customer_id = $1""",
        customer_id,
        at,
    )
