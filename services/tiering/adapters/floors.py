"""Tier floors (manual assignments and paid memberships) in PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from services.tiering.domain.state import Floor, FloorKind
from shared.db import Connection


async def load_floors(
    conn: Connection, schema: str, customer_ids: Iterable[str], *, ending_after: datetime | None
) -> dict[str, list[Floor]]:
    """Floors of these customers that end after `ending_after` (all when None)."""
    ids = sorted(set(customer_ids))
    floors: dict[str, list[Floor]] = {c: [] for c in ids}
    if not ids:
        return floors
    rows = await conn.fetch(
        f"""SELECT customer_id, kind, ref, tier, starts_at, ends_at, reason
            FROM {schema}.floors
            WHERE customer_id = ANY($1::text[]) AND ($2::timestamptz IS NULL OR ends_at > $2)
            ORDER BY customer_id, starts_at, kind, ref""",
        ids,
        ending_after,
    )
    for r in rows:
        floors[r["customer_id"]].append(
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
    conn: Connection, schema: str, customer_floors: Sequence[tuple[str, Floor]]
) -> None:
    """Insert floors, replacing one with the same customer, kind and ref.

    Floors given for the same customer, kind and ref (a membership bought and cancelled within
    one batch) end as if written one after the other: the last one given is kept.
    """
    if not customer_floors:
        return
    last = {(c, f.kind.value, f.ref): (c, f) for c, f in customer_floors}
    customer_floors = [last[key] for key in sorted(last)]
    await conn.execute(
        f"""INSERT INTO {schema}.floors
                (customer_id, kind, ref, tier, starts_at, ends_at, reason)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
                                 $5::timestamptz[], $6::timestamptz[], $7::text[])
            ON CONFLICT (customer_id, kind, ref) DO UPDATE
               SET tier = excluded.tier, starts_at = excluded.starts_at,
                   ends_at = excluded.ends_at, reason = excluded.reason,
                   recorded_at = now()""",
        [c for c, _ in customer_floors],
        [f.kind.value for _, f in customer_floors],
        [f.ref for _, f in customer_floors],
        [f.tier for _, f in customer_floors],
        [f.starts_at for _, f in customer_floors],
        [f.ends_at for _, f in customer_floors],
        [f.reason for _, f in customer_floors],
    )
