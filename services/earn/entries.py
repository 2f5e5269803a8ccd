"""Writing ledger entries with their loyalty.points events, in the caller's transaction.

Every ledger entry produces its event through the outbox: this is the one way entries are
written, whatever caused them (orders, actions, redemptions, adjustments, expiry).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

from pydantic_core import to_json

from services.earn.adapters.ledger import SCHEMA, NewEntry, WrittenEntry, append_entries
from shared import metrics
from shared.db import Connection
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
    """The loyalty.points event of a written entry, serialised straight from its values.

    Every value comes from a validated input or from the ledger's own rules, so building the
    event model only to serialise it would check them a second time, at about 7% of the
    process's time in a drain. The unit tests hold these bytes to the contract, for every kind of
    entry, against validating through the event model.
    """
    entry = written.entry
    return OutboxMessage(
        TOPIC,
        entry.customer_id.encode(),
        to_json(
            {
                "specversion": "1.0",
                "id": entry.entry_id,
                "source": SOURCE,
                "type": EVENT_TYPES[entry.kind],
                "time": entry.occurred_at,
                "subject": entry.customer_id,
                "datacontenttype": "application/json",
                "data": {
                    "entry_id": entry.entry_id,
                    "customer_id": entry.customer_id,
                    "shop_id": entry.shop_id,
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
        ),
        cause=entry.source_event_id,
    )
