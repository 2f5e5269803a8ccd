"""Tier floors (manual assignments and paid memberships) in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from services.tiering.domain.state import Floor, FloorKind, Member
from shared.db import Connection


async def load_floors(
    conn: Connection, schema: str, members: Iterable[Member], *, ending_after: datetime | None
) -> dict[Member, list[Floor]]:
    """Floors of these customers that end after `ending_after` (all when None)."""
    keys = sorted(set(members))
    floors: dict[Member, list[Floor]] = {m: [] for m in keys}
    if not keys:
        return floors
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id, kind, ref, tier, starts_at, ends_at, reason
            FROM {schema}.floors
            JOIN unnest($1::text[], $2::text[]) AS k(shop_id, customer_id)
            USING (shop_id, customer_id)
            WHERE $3::timestamptz IS NULL OR ends_at > $3
            ORDER BY shop_id, customer_id, starts_at, kind, ref""",
        [m[0] for m in keys],
        [m[1] for m in keys],
        ending_after,
    )
    for r in rows:
        floors[(r["shop_id"], r["customer_id"])].append(
            Floor(
                FloorKind(r["kind"]),
                r["ref"],
                r["tier"],
                r["starts_at"],
                r["ends_at"],
                r["reason"],
            )
        )
    return floors


async def save_floors(
    conn: Connection, schema: str, member_floors: Sequence[tuple[Member, Floor]]
) -> None:
    """Insert floors, replacing one with the same shop, customer, kind and ref.

    Floors given for the same customer, kind and ref (a membership bought and cancelled within
    one batch) end as if written one after the other: the last one given is kept.
    """
    if not member_floors:
        return
    last = {(*m, f.kind.value, f.ref): (m, f) for m, f in member_floors}
    member_floors = [last[key] for key in sorted(last)]
    await conn.execute(
        f"""INSERT INTO {schema}.floors
                (shop_id, customer_id, kind, ref, tier, starts_at, ends_at, reason)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::timestamptz[], $7::timestamptz[], $8::text[])
            ON CONFLICT (shop_id, customer_id, kind, ref) DO UPDATE
               SET tier = excluded.tier, starts_at = excluded.starts_at,
                   ends_at = excluded.ends_at, reason = excluded.reason,
                   recorded_at = now()""",
        [m[0] for m, _ in member_floors],
        [m[1] for m, _ in member_floors],
        [f.kind.value for _, f in member_floors],
        [f.ref for _, f in member_floors],
        [f.tier for _, f in member_floors],
        [f.starts_at for _, f in member_floors],
        [f.ends_at for _, f in member_floors],
        [f.reason for _, f in member_floors],
    )
