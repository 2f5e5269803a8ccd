"""Use cases of the earn service: decide with the domain, persist in the caller's transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import structlog

from services.earn.adapters.ledger import SCHEMA, NewEntry, WrittenEntry, append_entries
from services.earn.adapters.tiers import TierSeen, multipliers_at, record_tiers
from services.earn.domain.points import EarnRate, points_for
from shared import metrics
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.errors import RejectedMessage
from shared.events import PointsEarned, encode_event, make_event
from shared.outbox import OutboxMessage, enqueue

log = structlog.get_logger(__name__)

SOURCE = "loyalty/earn"


async def award_points(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    rates: Mapping[str, EarnRate],
) -> list[Rejection]:
    """order.paid earns points at the base rate of its currency, times the multiplier of the
    customer's tier when the order was paid: one ledger entry per order.

    The entry id derives from the input event id, so a replay can never credit twice even if
    the inbox were bypassed. Other order events are recorded (inbox) and left to later rules.
    """
    entries: list[NewEntry] = []
    issued: Counter[str] = Counter()  # points by the currency that earned them
    rejections: list[Rejection] = []
    paid = [(i, e) for i in events if (e := i.event) is not None and e.type == "order.paid"]
    multipliers = await multipliers_at(conn, [(e.subject, e.time) for _, e in paid])
    for (incoming, event), multiplier in zip(paid, multipliers, strict=True):
        order = event.data
        rate = rates.get(order.currency)
        if rate is None:
            error = RejectedMessage(
                f"no earning rate is configured for currency {order.currency}",
                error_class="NoEarnRate",
            )
            rejections.append(Rejection(incoming, error))
            continue
        points = points_for(order.totals.total.amount, rate, multiplier)
        if points == 0:
            continue
        issued[order.currency] += points
        entries.append(
            NewEntry(
                entry_id=f"earn:{event.id}",
                customer_id=order.customer_id,
                kind="earned",
                delta=points,
                reason="order.paid",
                order_id=order.order_id,
                source_event_id=event.id,
                occurred_at=event.time,
            )
        )
    written = await append_entries(conn, entries)
    await enqueue(conn, SCHEMA, [_points_earned(w) for w in written])
    for currency, points in issued.items():
        metrics.POINTS_ISSUED.labels("earn", currency).inc(points)
    return rejections


async def record_tier_changes(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
    """tier.changed tells earn the multiplier from its effective time on; tier.at_risk is not
    earn's concern."""
    await record_tiers(
        conn,
        [
            TierSeen(
                event_id=event.id,
                customer_id=event.data.customer_id,
                tier=event.data.to_tier,
                multiplier=event.data.multiplier,
                effective_at=event.data.effective_at,
            )
            for incoming in events
            if (event := incoming.event) is not None and event.type == "tier.changed"
        ],
    )
    return []


def _points_earned(written: WrittenEntry) -> OutboxMessage:
    entry = written.entry
    event = make_event(
        "points.earned",
        source=SOURCE,
        subject=entry.customer_id,
        id=entry.entry_id,
        time=entry.occurred_at,
        data=PointsEarned(
            entry_id=entry.entry_id,
            customer_id=entry.customer_id,
            delta=entry.delta,
            balance_after=written.balance_after,
            reason=entry.reason,
            order_id=entry.order_id,
            source_event_id=entry.source_event_id,
        ),
    )
    return OutboxMessage("loyalty.points", entry.customer_id.encode(), encode_event(event))
