"""With basis points, earned points count and the balance never does (handler on real SQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
from support import consumer_record, unique

from services.tiering.handlers import apply_activity, evaluate_due
from services.tiering.programme import parse_programme
from services.tiering.shops import TierProgrammes
from shared.clock import FixedClock
from shared.consumer import Incoming, to_incoming
from shared.events import (
    PointsEarned,
    PointsRedeemed,
    PointsReversed,
    encode_event,
    make_event,
)

# A USD shop: points earned per calendar year, New York days.
PROGRAMME = parse_programme(
    {
        "time_zone": "America/New_York",
        "basis": "points",
        "window": {"kind": "calendar_year"},
        "downgrade": {"mode": "end_of_period", "steps": "to_qualifying"},
        "tiers": [
            {"code": "insider", "name": "Insider"},
            {"code": "vib", "name": "VIB", "multiplier": "1.5", "enter": 500, "keep": 450},
            {"code": "rouge", "name": "Rouge", "multiplier": "2", "enter": 1000},
        ],
    }
)
EARNED_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def points_event(type_: str, data: Any, offset: int) -> Incoming:
    event = make_event(
        type_, source="tests/earn", subject=data.customer_id, data=data, time=EARNED_AT
    )
    parsed = to_incoming(
        consumer_record(encode_event(event), topic="loyalty.points", offset=offset)
    )
    assert isinstance(parsed, Incoming)
    return parsed


async def test_points_basis_counts_earned_points_never_the_balance(
    db: asyncpg.Pool, tiering_schema: str
) -> None:
    schema = tiering_schema
    customer = unique("c")
    entry = {"customer_id": customer, "reason": "order.paid", "order_id": "o-1"}
    events = [
        points_event(
            "points.earned", PointsEarned(entry_id="e1", delta=600, balance_after=600, **entry), 0
        ),
        points_event(
            "points.redeemed",
            PointsRedeemed(entry_id="e2", delta=-600, balance_after=0, **entry),
            1,
        ),
        points_event(
            "points.reversed",
            PointsReversed(entry_id="e3", delta=-200, balance_after=-200, **entry),
            2,
        ),
    ]
    clock = FixedClock(datetime(2026, 6, 1, tzinfo=UTC))

    async with db.acquire() as conn, conn.transaction():
        rejected = await apply_activity(
            conn, events, programmes=TierProgrammes(PROGRAMME), schema=schema, clock=clock
        )
    row = await db.fetchrow(f"SELECT * FROM {schema}.customers WHERE customer_id = $1", customer)
    totals = await db.fetchval(
        f"SELECT sum(added - removed) FROM {schema}.contributions WHERE customer_id = $1", customer
    )
    [published] = await db.fetch(f"SELECT unnest(payloads) AS value FROM {schema}.outbox")
    # New York's new year: the review of 2026 judges 400 points, below VIB's 450 to keep.
    review = datetime(2027, 1, 1, 5, 0, tzinfo=UTC)
    async with db.acquire() as conn, conn.transaction():
        await evaluate_due(
            conn, programmes=TierProgrammes(PROGRAMME), schema=schema, now=review, limit=10
        )
    after = await db.fetchrow(f"SELECT * FROM {schema}.customers WHERE customer_id = $1", customer)

    assert rejected == []
    assert totals == 400
    assert row is not None
    assert (row["tier"], row["review_at"]) == ("vib", review)
    change = json.loads(published["value"])["data"]
    assert (change["to_tier"], change["basis"], change["currency"]) == ("vib", "points", None)
    assert (change["qualifying_amount"], change["multiplier"]) == ("600", "1.5")
    assert after is not None
    assert (after["tier"], after["review_at"]) == ("insider", None)
