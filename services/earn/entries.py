"""Writing ledger entries with their loyalty.points events, in the caller's transaction.

Every ledger entry produces its event through the outbox: this is the one way entries are
written, whatever caused them (orders, actions, redemptions, adjustments, expiry).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from services.earn.adapters.ledger import SCHEMA, append_entries, entry_message
from services.earn.domain.ledger import NewEntry, WrittenEntry
from shared import metrics
from shared.db import Connection
from shared.outbox import enqueue


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
