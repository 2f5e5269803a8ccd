"""Writing ledger entries with their loyalty.points events, in the caller's transaction.

Every ledger entry produces its event through the outbox: this is the one way entries are
written, whatever caused them (orders, actions, redemptions, adjustments, expiry).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from services.earn.adapters.ledger import SCHEMA, NewEntry, WrittenEntry, append_entries
from shared import metrics
from shared.db import Connection
from shared.events import encode_event, event_model
from shared.outbox import OutboxMessage, enqueue

SOURCE: Final = "loyalty/earn"
TOPIC: Final = "loyalty.points"

EVENT_TYPES: Final = {
    "earned": "points.earned",
    "reversed": "points.reversed",
    "redeemed": "points.redeemed",
    "restored": "points.redeemed",  # a cancelled redemption: a positive points.redeemed
    "expired": "points.expired",
    "adjusted": "points.adjusted",
}


async def write_entries(conn: Connection, entries: Sequence[NewEntry]) -> list[WrittenEntry]:
    """Append the entries, move the balances and enqueue one event per entry."""
    written = await append_entries(conn, entries)
    await enqueue(conn, SCHEMA, [entry_message(w) for w in written])
    _count(written)
    return written


def _count(written: Sequence[WrittenEntry]) -> None:
    by_kind: Counter[tuple[str, str]] = Counter()
    for w in written:
        if w.entry.currency is None:  # points only; store credit is money
            by_kind[(w.entry.kind, w.entry.reason)] += w.entry.delta
    for (kind, reason), delta in by_kind.items():
        if kind == "earned":
            metrics.POINTS_ISSUED.labels("earn", reason).inc(delta)
        elif kind == "reversed":
            metrics.POINTS_REVERSED.labels("earn", reason).inc(-delta)
        elif kind == "redeemed":
            metrics.POINTS_REDEEMED.labels("earn").inc(-delta)
        elif kind == "expired":
            metrics.POINTS_EXPIRED.labels("earn").inc(-delta)


def entry_message(written: WrittenEntry) -> OutboxMessage:
    """The loyalty.points event of a written entry, validated against its contract.

    The envelope and its data are validated in one pass from plain values: the same checks as
    building the data model and then the event, at a fraction of the cost per entry.
    """
    entry = written.entry
    type_ = EVENT_TYPES[entry.kind]
    event = event_model(type_).model_validate(
        {
            "id": entry.entry_id,
            "source": SOURCE,
            "type": type_,
            "time": entry.occurred_at,
            "subject": entry.customer_id,
            "data": {
                "entry_id": entry.entry_id,
                "customer_id": entry.customer_id,
                "delta": entry.delta,
                "balance_after": written.balance_after,
                "reason": entry.reason,
                "order_id": entry.order_id,
                "source_event_id": entry.source_event_id,
                "balance_kind": entry.balance_kind,
                "currency": entry.currency,
                "expires_at": entry.expires_at,
            },
        }
    )
    return OutboxMessage(
        TOPIC, entry.customer_id.encode(), encode_event(event), cause=entry.source_event_id
    )
