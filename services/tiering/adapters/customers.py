"""Customer tier state in PostgreSQL: locked, read and written a batch at a time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.tiering.domain.state import Member, TierState
from shared.db import Connection

_COLUMNS = """shop_id, customer_id, tier, tier_since, earned_tier, earned_at, review_at,
    below_since, warned_deadline, evaluated_until, next_check_at, source_topic, source_partition,
    source_offset, last_shop_id"""


@dataclass(frozen=True, slots=True)
class Position:
    """Where a record sits in its topic; one customer's records share a partition."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class StoredCustomer:
    state: TierState
    position: Position | None
    next_check_at: datetime | None = None
    # A coalition's account: the member shop of its last activity (None for any other).
    last_shop_id: str | None = None


async def lock_customers(
    conn: Connection, schema: str, entry_tiers: Mapping[Member, str]
) -> dict[Member, StoredCustomer]:
    """Create missing rows at their shop's entry tier, then lock every row in key order."""
    members = sorted(entry_tiers)
    if not members:
        return {}
    shops, customers = [m[0] for m in members], [m[1] for m in members]
    await conn.execute(
        f"""INSERT INTO {schema}.customers (shop_id, customer_id, tier, earned_tier)
            SELECT s, c, e, e FROM unnest($1::text[], $2::text[], $3::text[]) AS k(s, c, e)
            ON CONFLICT (shop_id, customer_id) DO NOTHING""",
        shops,
        customers,
        [entry_tiers[m] for m in members],
    )
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM {schema}.customers
            JOIN unnest($1::text[], $2::text[]) AS k(shop_id, customer_id)
            USING (shop_id, customer_id)
            ORDER BY shop_id, customer_id FOR UPDATE OF customers""",
        shops,
        customers,
    )
    return {(row["shop_id"], row["customer_id"]): stored(row) for row in rows}


async def claim_due(
    conn: Connection,
    schema: str,
    *,
    now: datetime,
    limit: int,
    shops: Sequence[str],
    only: Sequence[Member] | None = None,
) -> dict[Member, StoredCustomer]:
    """Lock up to `limit` customers of these shops whose next check is due, skipping rows
    others hold; `only`: just these (shop, customer) pairs."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM {schema}.customers
            WHERE next_check_at <= $1 AND shop_id = ANY($3::text[])
              AND ($4::text[] IS NULL
                   OR (shop_id, customer_id) IN (SELECT * FROM unnest($4::text[], $5::text[])))
            ORDER BY next_check_at, shop_id, customer_id
            LIMIT $2 FOR UPDATE SKIP LOCKED""",
        now,
        limit,
        list(shops),
        None if only is None else [m[0] for m in only],
        None if only is None else [m[1] for m in only],
    )
    return {(row["shop_id"], row["customer_id"]): stored(row) for row in rows}


async def read_customer(
    conn: Connection, schema: str, shop_id: str, customer_id: str
) -> StoredCustomer | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM {schema}.customers WHERE shop_id = $1 AND customer_id = $2",
        shop_id,
        customer_id,
    )
    return None if row is None else stored(row)


async def save_customers(conn: Connection, schema: str, rows: Sequence[StoredCustomer]) -> None:
    """Write states back, one statement for the whole batch."""
    if not rows:
        return
    states = [r.state for r in rows]
    await conn.execute(
        f"""UPDATE {schema}.customers AS c SET
                tier = u.tier, tier_since = u.tier_since, earned_tier = u.earned_tier,
                earned_at = u.earned_at, review_at = u.review_at, below_since = u.below_since,
                warned_deadline = u.warned_deadline, evaluated_until = u.evaluated_until,
                next_check_at = u.next_check_at, source_topic = u.source_topic,
                source_partition = u.source_partition, source_offset = u.source_offset,
                last_shop_id = COALESCE(u.last_shop_id, c.last_shop_id), updated_at = now()
            FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],
                        $5::timestamptz[], $6::timestamptz[], $7::timestamptz[],
                        $8::timestamptz[], $9::timestamptz[], $10::timestamptz[],
                        $11::text[], $12::integer[], $13::bigint[], $14::text[], $15::text[])
                 AS u(customer_id, tier, tier_since, earned_tier, earned_at, review_at,
                      below_since, warned_deadline, evaluated_until, next_check_at,
                      source_topic, source_partition, source_offset, shop_id, last_shop_id)
            WHERE c.shop_id = u.shop_id AND c.customer_id = u.customer_id""",
        [s.customer_id for s in states],
        [s.tier for s in states],
        [s.tier_since for s in states],
        [s.earned for s in states],
        [s.earned_at for s in states],
        [s.review_at for s in states],
        [s.below_since for s in states],
        [s.warned_deadline for s in states],
        [s.evaluated_until for s in states],
        [r.next_check_at for r in rows],
        [r.position.topic if r.position else None for r in rows],
        [r.position.partition if r.position else None for r in rows],
        [r.position.offset if r.position else None for r in rows],
        [s.shop_id for s in states],
        [r.last_shop_id for r in rows],
    )


def stored(row: asyncpg.Record) -> StoredCustomer:
    state = TierState(
        shop_id=row["shop_id"],
        customer_id=row["customer_id"],
        earned=row["earned_tier"],
        earned_at=row["earned_at"],
        review_at=row["review_at"],
        below_since=row["below_since"],
        tier=row["tier"],
        tier_since=row["tier_since"],
        evaluated_until=row["evaluated_until"],
        warned_deadline=row["warned_deadline"],
    )
    position = None
    if row["source_topic"] is not None:
        position = Position(row["source_topic"], row["source_partition"], row["source_offset"])
    return StoredCustomer(state, position, row["next_check_at"], row["last_shop_id"])
