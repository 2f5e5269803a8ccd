"""What the expiry pass reads and records in PostgreSQL: due accounts, their points ledger,
warnings sent and when to look again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.earn.adapters.ledger import SCHEMA
from services.earn.domain.expiry import LedgerLine
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class DueAccount:
    shop_id: str
    customer_id: str
    balance: int
    last_order_at: datetime | None
    last_shop_id: str | None = None  # a coalition's account: its last member shop with activity


async def take_due_accounts(
    conn: Connection, *, now: datetime, limit: int, shops: Sequence[str]
) -> list[DueAccount]:
    """Claim accounts of `shops` with points that the pass must look at by `now`, in account
    order (the order every balance write locks accounts in);
    replicas skip each other's (SKIP LOCKED). A coalition's account's last order is the last
    one a member shop paid into it; a shop's own account's, the last that earned into it."""
    rows = await conn.fetch(
        f"""SELECT a.shop_id, a.customer_id, a.points_balance, a.last_shop_id,
                   greatest(
                       (SELECT max(o.paid_at) FROM {SCHEMA}.orders o
                        WHERE o.shop_id = a.shop_id AND o.customer_id = a.customer_id
                          AND o.holder_id IS NULL),
                       -- a coalition's account: the orders its members paid into it
                       (SELECT max(o.paid_at) FROM {SCHEMA}.orders o
                        WHERE o.shop_id IN (SELECT m.shop_id FROM {SCHEMA}.shop_memberships m
                                            WHERE m.coalition_id = a.shop_id)
                          AND o.customer_id = a.customer_id AND o.holder_id = a.shop_id)
                   ) AS last_order_at
            FROM {SCHEMA}.accounts a
            WHERE a.expiry_check_at <= $1 AND a.points_balance > 0
              AND a.shop_id = ANY($3::text[])
            ORDER BY a.shop_id, a.customer_id
            LIMIT $2
            FOR UPDATE OF a SKIP LOCKED""",
        now,
        limit,
        list(shops),
    )
    return [
        DueAccount(
            r["shop_id"],
            r["customer_id"],
            r["points_balance"],
            r["last_order_at"],
            r["last_shop_id"],
        )
        for r in rows
    ]


async def points_lines(
    conn: Connection, customers: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[LedgerLine]]:
    """The points entries of each (shop, customer), in ledger order."""
    lines: dict[tuple[str, str], list[LedgerLine]] = {c: [] for c in customers}
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id, kind, reason, delta, order_id, expires_at, occurred_at
            FROM {SCHEMA}.ledger
            WHERE (shop_id, customer_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
              AND balance_kind = 'points'
            ORDER BY shop_id, customer_id, seq""",
        [shop for shop, _ in lines],
        [customer for _, customer in lines],
    )
    for r in rows:
        mine = lines.get((r["shop_id"], r["customer_id"]))
        if mine is None:  # another shop's customer of the same id, in the same chunk
            continue
        mine.append(
            LedgerLine(
                r["kind"], r["reason"], r["delta"], r["order_id"], r["expires_at"], r["occurred_at"]
            )
        )
    return lines


async def warnings_sent(
    conn: Connection, customers: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], set[str]]:
    """The warning ids sent to each (shop, customer)."""
    asked = set(customers)
    rows = await conn.fetch(
        f"""SELECT shop_id, customer_id, warning_id FROM {SCHEMA}.expiry_warnings
            WHERE (shop_id, customer_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
        [shop for shop, _ in asked],
        [customer for _, customer in asked],
    )
    sent: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        if (key := (r["shop_id"], r["customer_id"])) in asked:
            sent.setdefault(key, set()).add(r["warning_id"])
    return sent


async def record_warnings(
    conn: Connection,
    warnings: Sequence[tuple[str, str, str, int, datetime]],
    *,
    sent_at: datetime,
) -> set[tuple[str, str]]:
    """Record (shop, warning id, customer, points, expires at); the ids recorded now (not
    before), as (shop, warning id)."""
    if not warnings:
        return set()
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.expiry_warnings (shop_id, warning_id, customer_id, points,
                                                  expires_at, sent_at)
            SELECT s, w, c, p, e, $6
            FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[])
                 AS u(s, w, c, p, e)
            ON CONFLICT DO NOTHING
            RETURNING shop_id, warning_id""",
        *([w[i] for w in warnings] for i in range(5)),
        sent_at,
    )
    return {(r["shop_id"], r["warning_id"]) for r in rows}


async def schedule_checks(conn: Connection, checks: Sequence[tuple[str, str, datetime]]) -> None:
    """When to look at each account (shop, customer, at) next ('infinity' for never)."""
    if not checks:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.accounts a SET expiry_check_at = u.at
            FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(s, id, at)
            WHERE a.shop_id = u.s AND a.customer_id = u.id""",
        *([c[i] for c in checks] for i in range(3)),
    )
