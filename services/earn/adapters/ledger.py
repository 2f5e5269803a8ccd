"""The points ledger in PostgreSQL: balances and append-only entries, written set-based."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.db import Connection

SCHEMA = "earn"


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A ledger entry to write; its balance_after is known only once balances are locked."""

    entry_id: str
    customer_id: str
    kind: str
    delta: int
    reason: str
    order_id: str | None
    source_event_id: str | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class WrittenEntry:
    entry: NewEntry
    balance_after: int


async def append_entries(conn: Connection, entries: Sequence[NewEntry]) -> list[WrittenEntry]:
    """Append entries and move the balances in one set-based pass; the caller owns the transaction.

    Balances are upserted once per customer, in customer order (so two batches touching the
    same customers lock them in the same order and cannot deadlock); each entry's
    balance_after is then the running balance in the order the entries were given.
    """
    if not entries:
        return []
    totals: dict[str, tuple[int, int]] = {}
    for e in entries:
        delta, earned = totals.get(e.customer_id, (0, 0))
        totals[e.customer_id] = (delta + e.delta, earned + (e.delta if e.kind == "earned" else 0))
    customers = sorted(totals)
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.accounts AS a (customer_id, points_balance, lifetime_earned)
            SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[])
            ON CONFLICT (customer_id) DO UPDATE
               SET points_balance = a.points_balance + excluded.points_balance,
                   lifetime_earned = a.lifetime_earned + excluded.lifetime_earned,
                   updated_at = now()
            RETURNING customer_id, points_balance""",
        customers,
        [totals[c][0] for c in customers],
        [totals[c][1] for c in customers],
    )
    running = {r["customer_id"]: r["points_balance"] - totals[r["customer_id"]][0] for r in rows}
    written = []
    for e in entries:
        running[e.customer_id] += e.delta
        written.append(WrittenEntry(e, running[e.customer_id]))
    await conn.copy_records_to_table(
        "ledger",
        schema_name=SCHEMA,
        columns=[
            "entry_id",
            "customer_id",
            "kind",
            "delta",
            "balance_after",
            "reason",
            "order_id",
            "source_event_id",
            "occurred_at",
        ],
        records=[
            (
                w.entry.entry_id,
                w.entry.customer_id,
                w.entry.kind,
                w.entry.delta,
                w.balance_after,
                w.entry.reason,
                w.entry.order_id,
                w.entry.source_event_id,
                w.entry.occurred_at,
            )
            for w in written
        ],
    )
    return written


async def balance(conn: Connection, customer_id: str) -> int:
    """The customer's points balance; 0 for a customer never credited."""
    value = await conn.fetchval(
        f"SELECT points_balance FROM {SCHEMA}.accounts WHERE customer_id = $1", customer_id
    )
    return int(value or 0)
