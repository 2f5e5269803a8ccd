"""The points ledger in PostgreSQL: balances and append-only entries, written set-based, and
the loyalty.points event of each entry, enqueued in the same transaction.

Every ledger entry is written through `write_entries` (the unit of work's ledger), whatever
caused it (orders, actions, redemptions, adjustments, expiry), so each has its event."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Final

import asyncpg
from pydantic_core import to_json

from services.earn.domain.ledger import Account, NewEntry, WrittenEntry
from shared import metrics
from shared.db import Connection
from shared.outbox import OutboxMessage, enqueue

SCHEMA = "earn"
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
            "at_shop",
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
                w.entry.at_shop,
            )
            for w in written
        ],
    )
    return written


async def _move_points(conn: Connection, entries: Sequence[NewEntry]) -> dict[Account, int]:
    """Upsert the points balances; each account's balance before these entries.

    A coalition's account remembers the last member shop with activity (the entries' last
    at_shop), which account-level events (expiry) name as theirs.

    An account given points is due for the expiry pass again (`expiry_check_at` -infinity):
    the pass set when to look next from the points it had then. A new account given none is
    never due until it is given some.
    """
    if not entries:
        return {}
    totals: dict[tuple[str, str], tuple[int, int, bool]] = {}
    last_shop: dict[tuple[str, str], str] = {}
    for e in entries:
        key = (e.shop_id, e.customer_id)
        delta, earned, added = totals.get(key, (0, 0, False))
        totals[key] = (
            delta + e.delta,
            earned + (e.delta if e.kind == "earned" else 0),
            added or e.delta > 0,
        )
        if e.at_shop is not None:
            last_shop[key] = e.at_shop
    customers = sorted(totals)
    shops = {shop for shop, _ in customers}
    # One shop's batch (the common case) sends its shop once, not once per account: the shop
    # column then costs PostgreSQL neither an array to unnest nor a value per returned row.
    one_shop = shops.pop() if len(shops) == 1 else None
    if one_shop is not None:
        shop, unnested, named, returned = "$5::text", "", "", ""
    else:
        shop, unnested, named, returned = "s", "$5::text[], ", "s, ", "shop_id, "
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.accounts AS a
                   (shop_id, customer_id, points_balance, lifetime_earned, expiry_check_at,
                    last_shop_id)
            SELECT {shop}, c, d, e,
                   CASE WHEN added THEN '-infinity'::timestamptz ELSE 'infinity' END, at
            FROM unnest({unnested}$1::text[], $2::bigint[], $3::bigint[], $4::boolean[],
                        $6::text[])
                 AS u({named}c, d, e, added, at)
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET points_balance = a.points_balance + excluded.points_balance,
                   lifetime_earned = a.lifetime_earned + excluded.lifetime_earned,
                   expiry_check_at = least(a.expiry_check_at, excluded.expiry_check_at),
                   last_shop_id = coalesce(excluded.last_shop_id, a.last_shop_id),
                   updated_at = now()
            RETURNING {returned}customer_id, points_balance""",
        [c for _, c in customers],
        [totals[k][0] for k in customers],
        [totals[k][1] for k in customers],
        [totals[k][2] for k in customers],
        one_shop if one_shop is not None else [s for s, _ in customers],
        [last_shop.get(k) for k in customers],
    )
    before: dict[Account, int] = {}
    for r in rows:
        key = (r["shop_id"] if one_shop is None else one_shop, r["customer_id"])
        before[(*key, None)] = r["points_balance"] - totals[key][0]
    return before


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


def entry_message(written: WrittenEntry) -> OutboxMessage:
    """The loyalty.points event of a written entry, serialised straight from its values.

    Every value comes from a validated input or from the ledger's own rules, so building the
    event model only to serialise it would check them a second time, at about 7% of the
    process's time in a drain. The unit tests hold these bytes to the contract, for every kind of
    entry, against validating through the event model.
    """
    entry = written.entry
    data: dict[str, object] = {
        "entry_id": entry.entry_id,
        "customer_id": entry.customer_id,
        "shop_id": entry.shop_id,
    }
    if entry.at_shop is not None:  # a coalition's account only: others' events stay as they were
        data["at_shop"] = entry.at_shop
    data |= {
        "delta": entry.delta,
        "balance_after": written.balance_after,
        "reason": entry.reason,
        "order_id": entry.order_id,
        "source_event_id": entry.source_event_id,
        "balance_kind": entry.balance_kind,
        "currency": entry.currency,
        "expires_at": entry.expires_at,
    }
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
                "data": data,
            }
        ),
        cause=entry.source_event_id,
    )


async def read_entries(
    conn: Connection, shop_id: str, customer_id: str, *, before_seq: int | None, limit: int
) -> list[asyncpg.Record]:
    """A page of the customer's ledger at the shop, newest first: entries with seq below
    `before_seq`."""
    return await conn.fetch(
        f"""SELECT seq, entry_id, kind, delta, balance_after, reason, order_id, balance_kind,
                   currency, occurred_at, expires_at, coalesce(at_shop, shop_id) AS shop
            FROM {SCHEMA}.ledger
            WHERE shop_id = $4 AND customer_id = $1 AND ($2::bigint IS NULL OR seq < $2)
            ORDER BY seq DESC LIMIT $3""",
        customer_id,
        before_seq,
        limit,
        shop_id,
    )
