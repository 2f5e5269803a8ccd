"""Contributions, parked movements and per-day activity in PostgreSQL, set-based."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

from services.tiering.domain.activity import Activity
from services.tiering.domain.contributions import Contribution, Movement, MovementKind, SourceKey
from services.tiering.domain.state import Member
from shared.db import Connection


async def load_contributions(
    conn: Connection, schema: str, keys: Iterable[SourceKey]
) -> list[Contribution]:
    shops, customers, sources = _split(keys)
    if not customers:
        return []
    rows = await conn.fetch(
        f"""SELECT c.shop_id, c.customer_id, c.source_key, c.unit, c.day, c.added, c.removed,
                   c.closed
            FROM unnest($1::text[], $2::text[], $3::text[]) AS k(shop_id, customer_id, source_key)
            JOIN {schema}.contributions c USING (shop_id, customer_id, source_key)""",
        shops,
        customers,
        sources,
    )
    return [
        Contribution(
            r["shop_id"],
            r["customer_id"],
            r["source_key"],
            r["unit"],
            r["day"],
            r["added"],
            r["removed"],
            r["closed"],
        )
        for r in rows
    ]


async def save_contributions(
    conn: Connection, schema: str, contributions: Sequence[Contribution]
) -> None:
    if not contributions:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.contributions AS c
                (customer_id, source_key, unit, day, added, removed, closed, shop_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::date[],
                                 $5::numeric[], $6::numeric[], $7::boolean[], $8::text[])
            ON CONFLICT (shop_id, customer_id, source_key) DO UPDATE
               SET added = excluded.added, removed = excluded.removed, closed = excluded.closed""",
        [c.customer_id for c in contributions],
        [c.key for c in contributions],
        [c.unit for c in contributions],
        [c.day for c in contributions],
        [c.added for c in contributions],
        [c.removed for c in contributions],
        [c.closed for c in contributions],
        [c.shop_id for c in contributions],
    )


async def load_parked(conn: Connection, schema: str, keys: Iterable[SourceKey]) -> list[Movement]:
    shops, customers, sources = _split(keys)
    if not customers:
        return []
    rows = await conn.fetch(
        f"""SELECT p.event_id, p.shop_id, p.customer_id, p.source_key, p.kind, p.unit, p.amount,
                   p.occurred_at
            FROM unnest($1::text[], $2::text[], $3::text[]) AS k(shop_id, customer_id, source_key)
            JOIN {schema}.parked_movements p USING (shop_id, customer_id, source_key)
            ORDER BY p.occurred_at, p.event_id""",
        shops,
        customers,
        sources,
    )
    return [
        Movement(
            event_id=r["event_id"],
            shop_id=r["shop_id"],
            customer_id=r["customer_id"],
            key=r["source_key"],
            kind=MovementKind(r["kind"]),
            unit=r["unit"],
            amount=r["amount"],
            day=None,
            at=r["occurred_at"],
        )
        for r in rows
    ]


async def park(conn: Connection, schema: str, movements: Sequence[Movement]) -> None:
    if not movements:
        return
    await conn.execute(
        f"""INSERT INTO {schema}.parked_movements
                (event_id, customer_id, source_key, kind, unit, amount, occurred_at, shop_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::numeric[], $7::timestamptz[], $8::text[])
            ON CONFLICT (event_id) DO NOTHING""",
        [m.event_id for m in movements],
        [m.customer_id for m in movements],
        [m.key for m in movements],
        [m.kind.value for m in movements],
        [m.unit for m in movements],
        [m.amount for m in movements],
        [m.at for m in movements],
        [m.shop_id for m in movements],
    )


async def release(conn: Connection, schema: str, event_ids: Sequence[str]) -> None:
    if event_ids:
        await conn.execute(
            f"DELETE FROM {schema}.parked_movements WHERE event_id = ANY($1::text[])",
            list(event_ids),
        )


async def forget_parked(conn: Connection, schema: str, *, occurred_before: datetime) -> int:
    """Drop movements whose source never came (an order cancelled before it was paid)."""
    result = await conn.execute(
        f"DELETE FROM {schema}.parked_movements WHERE occurred_at < $1", occurred_before
    )
    return int(result.split()[-1])


async def load_activity(
    conn: Connection, schema: str, since: Mapping[Member, tuple[date, bool]]
) -> dict[Member, Activity]:
    """Per customer, net amounts per unit and day from its `since` on.

    `since` maps each customer to its first day and whether days before it count, summed into
    one amount per unit (a lifetime window reads them); otherwise they are not read at all.
    """
    activity = {member: Activity(since=day) for member, (day, _) in since.items()}
    if not since:
        return activity
    members = list(since)
    # `day >= read_from` with read_from taken from the row stays a range scan of the index.
    rows = await conn.fetch(
        f"""SELECT c.shop_id, c.customer_id, c.unit,
                   CASE WHEN c.day >= s.since THEN c.day END AS day,
                   sum(c.added - c.removed) AS amount
            FROM unnest($1::text[], $2::text[], $3::date[], $4::date[])
                 AS s(shop_id, customer_id, since, read_from)
            JOIN {schema}.contributions c
              ON c.shop_id = s.shop_id AND c.customer_id = s.customer_id
             AND c.day >= s.read_from
            GROUP BY 1, 2, 3, 4""",
        [m[0] for m in members],
        [m[1] for m in members],
        [since[m][0] for m in members],
        [date.min if since[m][1] else since[m][0] for m in members],
    )
    for row in rows:
        target = activity[(row["shop_id"], row["customer_id"])]
        if row["day"] is None:
            target.before[row["unit"]] = row["amount"]
        else:
            target.days.setdefault(row["unit"], {})[row["day"]] = row["amount"]
    return activity


def _split(keys: Iterable[SourceKey]) -> tuple[list[str], list[str], list[str]]:
    unique = sorted(set(keys))
    return [k[0] for k in unique], [k[1] for k in unique], [k[2] for k in unique]
