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
    customer_id: str
    balance: int
    last_order_at: datetime | None


async def take_due_accounts(conn: Connection, *, now: datetime, limit: int) -> list[DueAccount]:
    """Claim accounts with points that the pass must look at by `now`, in customer order (the
    order every balance write locks accounts in); replicas skip each other's (SKIP LOCKED)."""
    rows = await conn.fetch(
        f"""SELECT a.customer_id, a.points_balance,
                   (SELECT max(o.paid_at) FROM {SCHEMA}.orders o
                    WHERE o.customer_id = a.customer_id) AS last_order_at
            FROM {SCHEMA}.accounts a
            WHERE a.expiry_check_at <= $1 AND a.points_balance > 0
            ORDER BY a.customer_id
            LIMIT $2
            FOR UPDATE OF a SKIP LOCKED""",
        now,
        limit,
    )
    return [DueAccount(r["customer_id"], r["points_balance"], r["last_order_at"]) for r in rows]


async def points_lines(
    conn: Connection, customer_ids: Sequence[str]
) -> dict[str, list[LedgerLine]]:
    rows = await conn.fetch(
        f"""SELECT customer_id, kind, reason, delta, order_id, expires_at, occurred_at
            FROM {SCHEMA}.ledger
            WHERE customer_id = ANY($1::text[]) AND balance_kind = 'points'
            ORDER BY customer_id, seq""",
        list(customer_ids),
    )
    lines: dict[str, list[LedgerLine]] = {c: [] for c in customer_ids}
    for r in rows:
        lines[r["customer_id"]].append(
            LedgerLine(
                r["kind"], r["reason"], r["delta"], r["order_id"], r["expires_at"], r["occurred_at"]
            )
        )
    return lines


async def warnings_sent(conn: Connection, customer_ids: Sequence[str]) -> dict[str, set[str]]:
    rows = await conn.fetch(
        f"""SELECT customer_id, warning_id FROM {SCHEMA}.expiry_warnings
            WHERE customer_id = ANY($1::text[])""",
        list(customer_ids),
    )
    sent: dict[str, set[str]] = {}
    for r in rows:
        sent.setdefault(r["customer_id"], set()).add(r["warning_id"])
    return sent


async def record_warnings(
    conn: Connection, warnings: Sequence[tuple[str, str, int, datetime]], *, sent_at: datetime
) -> set[str]:
    """Record (warning id, customer, points, expires at); the ids recorded now (not before)."""
    if not warnings:
        return set()
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.expiry_warnings (warning_id, customer_id, points, expires_at,
                                                  sent_at)
            SELECT w, c, p, e, $5
            FROM unnest($1::text[], $2::text[], $3::bigint[], $4::timestamptz[]) AS u(w, c, p, e)
            ON CONFLICT DO NOTHING
            RETURNING warning_id""",
        [w[0] for w in warnings],
        [w[1] for w in warnings],
        [w[2] for w in warnings],
        [w[3] for w in warnings],
        sent_at,
    )
    return {r["warning_id"] for r in rows}


async def schedule_checks(conn: Connection, checks: Sequence[tuple[str, datetime]]) -> None:
    """When to look at each account next ('infinity' for never)."""
    if not checks:
        return
    await conn.execute(
        f"""UPDATE {SCHEMA}.accounts a SET expiry_check_at = u.at
            FROM unnest($1::text[], $2::timestamptz[]) AS u(id, at)
            WHERE a.customer_id = u.id""",
        [c[0] for c in checks],
        [c[1] for c in checks],
    )
