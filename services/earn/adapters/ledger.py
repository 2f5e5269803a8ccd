"""The points ledger in PostgreSQL: balances and append-only entries, written set-based."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shared.callers import DEFAULT_SHOP
from shared.db import Connection
from shared.events.fields import EVENT_ID_MAX, bounded_id

SCHEMA = "earn"

Account = tuple[str, str, str | None]  # (shop, customer, None for points or the currency)


def shop_scoped(shop_id: str, local_id: str) -> str:
    """A globally unique id (of an entry or an event) from one unique within a shop (a
    customer's sign-up, an order's membership): as it is for the shop `default`, whose ids
    predate shops, else prefixed by the shop, its length first so that no two shops' ids can
    read alike (shop ids may contain any printable character)."""
    if shop_id == DEFAULT_SHOP:
        return local_id
    return bounded_id(f"shop:{len(shop_id)}:{shop_id}:{local_id}")


@dataclass(slots=True)  # not frozen: one per event, and frozen makes __init__ 3 times slower
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
    balance_kind: str = "points"  # or "store_credit": delta in minor units of `currency`
    currency: str | None = None
    expires_at: datetime | None = None
    shop_id: str = DEFAULT_SHOP

    def __post_init__(self) -> None:
        # The entry id is also the id of its points event: one derived from a long input id
        # ("earn:" and the event's own 256 characters) must still fit an event id.
        if len(self.entry_id) > EVENT_ID_MAX:
            self.entry_id = bounded_id(self.entry_id)

    @property
    def account(self) -> Account:
        """Which balance the entry moves: the points, or the store credit in one currency."""
        return (self.shop_id, self.customer_id, self.currency)


@dataclass(slots=True)
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
    running = await _move_points(conn, [e for e in entries if e.currency is None])
    running |= await _move_credit(conn, [e for e in entries if e.currency is not None])
    written = []
    for e in entries:
        running[e.account] += e.delta
        written.append(WrittenEntry(e, running[e.account]))
    await conn.copy_records_to_table(
        "ledger",
        schema_name=SCHEMA,
        columns=[
            "entry_id",
            "shop_id",
            "customer_id",
            "kind",
            "delta",
            "balance_after",
            "reason",
            "order_id",
            "source_event_id",
            "occurred_at",
            "balance_kind",
            "currency",
            "expires_at",
        ],
        records=[
            (
                w.entry.entry_id,
                w.entry.shop_id,
                w.entry.customer_id,
                w.entry.kind,
                w.entry.delta,
                w.balance_after,
                w.entry.reason,
                w.entry.order_id,
                w.entry.source_event_id,
                w.entry.occurred_at,
                w.entry.balance_kind,
                w.entry.currency,
                w.entry.expires_at,
            )
            for w in written
        ],
    )
    return written


async def _move_points(conn: Connection, entries: Sequence[NewEntry]) -> dict[Account, int]:
    """Upsert the points balances; each account's balance before these entries.

    An account given points is due for the expiry pass again (`expiry_check_at` -infinity):
    the pass set when to look next from the points it had then. A new account given none is
    never due until it is given some.
    """
    if not entries:
        return {}
    totals: dict[tuple[str, str], tuple[int, int, bool]] = {}
    for e in entries:
        key = (e.shop_id, e.customer_id)
        delta, earned, added = totals.get(key, (0, 0, False))
        totals[key] = (
            delta + e.delta,
            earned + (e.delta if e.kind == "earned" else 0),
            added or e.delta > 0,
        )
    customers = sorted(totals)
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.accounts AS a
                   (shop_id, customer_id, points_balance, lifetime_earned, expiry_check_at)
            SELECT s, c, d, e, CASE WHEN added THEN '-infinity'::timestamptz ELSE 'infinity' END
            FROM unnest($5::text[], $1::text[], $2::bigint[], $3::bigint[], $4::boolean[])
                 AS u(s, c, d, e, added)
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET points_balance = a.points_balance + excluded.points_balance,
                   lifetime_earned = a.lifetime_earned + excluded.lifetime_earned,
                   expiry_check_at = least(a.expiry_check_at, excluded.expiry_check_at),
                   updated_at = now()
            RETURNING shop_id, customer_id, points_balance""",
        [c for _, c in customers],
        [totals[k][0] for k in customers],
        [totals[k][1] for k in customers],
        [totals[k][2] for k in customers],
        [s for s, _ in customers],
    )
    return {
        (r["shop_id"], r["customer_id"], None): r["points_balance"]
        - totals[(r["shop_id"], r["customer_id"])][0]
        for r in rows
    }


async def _move_credit(conn: Connection, entries: Sequence[NewEntry]) -> dict[Account, int]:
    """Upsert the store credit balances; each account's balance before these entries."""
    if not entries:
        return {}
    totals: dict[Account, int] = {}
    for e in entries:
        totals[e.account] = totals.get(e.account, 0) + e.delta
    accounts = sorted(totals, key=lambda a: (a[0], a[1], a[2] or ""))
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.credit_accounts AS a
                   (shop_id, customer_id, currency, balance_minor)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
            ON CONFLICT (shop_id, customer_id, currency) DO UPDATE
               SET balance_minor = a.balance_minor + excluded.balance_minor, updated_at = now()
            RETURNING shop_id, customer_id, currency, balance_minor""",
        [a[0] for a in accounts],
        [a[1] for a in accounts],
        [a[2] for a in accounts],
        [totals[a] for a in accounts],
    )
    return {
        (r["shop_id"], r["customer_id"], r["currency"]): r["balance_minor"]
        - totals[(r["shop_id"], r["customer_id"], r["currency"])]
        for r in rows
    }


async def balance(conn: Connection, shop_id: str, customer_id: str) -> int:
    """The customer's points balance at the shop; 0 for a customer never credited."""
    value = await conn.fetchval(
        f"SELECT points_balance FROM {SCHEMA}.accounts WHERE shop_id = $1 AND customer_id = $2",
        shop_id,
        customer_id,
    )
    return int(value or 0)
