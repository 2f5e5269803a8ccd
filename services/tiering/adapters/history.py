"""The append-only tier history: written once per change, read newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.tiering.domain.state import TierChange
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event_id: str
    from_tier: str
    to_tier: str
    direction: str
    reason: str
    qualifying_amount: Decimal
    unit: str
    effective_at: datetime


async def record_changes(
    conn: Connection, schema: str, changes: Sequence[tuple[str, TierChange]]
) -> set[str]:
    """Append (event id, change) pairs; returns the ids new to the history.

    A change recomputed with the same id (a replay) is already there and is not written again,
    so it is not published again either.
    """
    if not changes:
        return set()
    rows = await conn.fetch(
        f"""INSERT INTO {schema}.tier_history
                (event_id, customer_id, from_tier, to_tier, direction, reason,
                 qualifying_amount, unit, effective_at, shop_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                 $6::text[], $7::numeric[], $8::text[], $9::timestamptz[],
                                 $10::text[])
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id""",
        [i for i, _ in changes],
        [c.customer_id for _, c in changes],
        [c.from_tier for _, c in changes],
        [c.to_tier for _, c in changes],
        [c.direction for _, c in changes],
        [c.reason for _, c in changes],
        [c.amount for _, c in changes],
        [c.unit for _, c in changes],
        [c.effective_at for _, c in changes],
        [c.shop_id for _, c in changes],
    )
    return {row["event_id"] for row in rows}


async def read_history(
    conn: Connection, schema: str, shop_id: str, customer_id: str, *, limit: int
) -> list[HistoryEntry]:
    rows = await conn.fetch(
        f"""SELECT event_id, from_tier, to_tier, direction, reason, qualifying_amount, unit,
                   effective_at
            FROM {schema}.tier_history WHERE shop_id = $1 AND customer_id = $2
            ORDER BY seq DESC LIMIT $3""",
        shop_id,
        customer_id,
        limit,
    )
    return [HistoryEntry(**dict(row)) for row in rows]
