"""The durable schedule: planned messages, cancellation by key, claiming due rows, outcomes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.notify.adapters.projections import SCHEMA, Member
from services.notify.domain.messages import Category, ChannelName, PlannedMessage
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class Claimed:
    """A scheduled row this worker holds (status 'sending', under a lease)."""

    id: int
    message_id: UUID
    dedup_key: str
    shop_id: str
    customer_id: str
    trigger: str
    template: str
    channel: ChannelName
    category: Category
    due_at: datetime
    payload: dict[str, Any]
    attempts: int
    created_at: datetime

    @property
    def notification_id(self) -> str:
        """Unique beyond this database: `id` restarts with a new one, `message_id` does not."""
        return f"n-{self.message_id}"

    @property
    def member(self) -> Member:
        return (self.shop_id, self.customer_id)


def claimed_row(row: asyncpg.Record) -> Claimed:
    return Claimed(
        id=row["id"],
        message_id=row["message_id"],
        dedup_key=row["dedup_key"],
        shop_id=row["shop_id"],
        customer_id=row["customer_id"],
        trigger=row["trigger"],
        template=row["template"],
        channel=row["channel"],
        category=row["category"],
        due_at=row["due_at"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
        created_at=row["created_at"],
    )


async def schedule(conn: Connection, plans: Sequence[PlannedMessage], now: datetime) -> int:
    """Insert planned messages; a dedup key seen before is left as it is. Returns rows added."""
    return await _insert(conn, plans, now, "DO NOTHING")


async def add_to_digest(conn: Connection, plans: Sequence[PlannedMessage], now: datetime) -> None:
    """Points digests: one row per customer and day; credits add up while it is pending."""
    folded: dict[tuple[str, str], PlannedMessage] = {}
    for plan in plans:
        key = (plan.shop_id, plan.dedup_key)
        first = folded.get(key)
        if first is None:
            folded[key] = plan
            continue
        earned = int(first.payload["earned"]) + int(plan.payload["earned"])
        folded[key] = replace(first, payload={**first.payload, "earned": earned})
    await _insert(
        conn,
        list(folded.values()),
        now,
        """DO UPDATE SET payload = jsonb_set(s.payload, '{earned}', to_jsonb(
                   (s.payload->>'earned')::bigint + (excluded.payload->>'earned')::bigint)),
               updated_at = excluded.updated_at
           WHERE s.status = 'pending'""",
    )


async def _insert(
    conn: Connection, plans: Sequence[PlannedMessage], now: datetime, on_conflict: str
) -> int:
    if not plans:
        return 0
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.scheduled AS s (dedup_key, customer_id, trigger, template,
                channel, category, due_at, payload, cancel_key, created_at, updated_at, shop_id)
            SELECT k, c, t, tpl, ch, cat, due, p::jsonb, ck, $10, $10, shop
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                        $6::text[], $7::timestamptz[], $8::text[], $9::text[], $11::text[])
                 AS u(k, c, t, tpl, ch, cat, due, p, ck, shop)
            ON CONFLICT (shop_id, dedup_key) {on_conflict} RETURNING id""",
        [p.dedup_key for p in plans],
        [p.customer_id for p in plans],
        [p.trigger for p in plans],
        [p.template for p in plans],
        [p.channel for p in plans],
        [p.category for p in plans],
        [p.due_at for p in plans],
        [json.dumps(p.payload) for p in plans],
        [p.cancel_key for p in plans],
        now,
        [p.shop_id for p in plans],
    )
    return len(rows)


async def cancel_for_orders(
    conn: Connection,
    ordered: Mapping[Member, datetime],
    cancel_keys: Mapping[Member, str],
    now: datetime,
) -> list[Claimed]:
    """Cancel pending messages under each customer's cancel key planned before the order."""
    if not ordered:
        return []
    members = sorted(ordered)
    rows = await conn.fetch(
        f"""UPDATE {SCHEMA}.scheduled s SET status = 'cancelled', updated_at = $5
            FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
                 AS o(shop_id, customer_id, key, at)
            WHERE s.shop_id = o.shop_id AND s.cancel_key = o.key
              AND s.customer_id = o.customer_id
              AND s.status = 'pending' AND (s.payload->>'since')::timestamptz <= o.at
            RETURNING s.*""",
        [m[0] for m in members],
        [m[1] for m in members],
        [cancel_keys[m] for m in members],
        [ordered[m] for m in members],
        now,
    )
    cancelled = [claimed_row(r) for r in rows]
    await log_attempts(conn, [(c, "cancelled", "ordered") for c in cancelled], now)
    return cancelled


def scope_pattern(scope: str) -> str:
    """A LIKE pattern matching customer ids that start with `scope`."""
    escaped = scope.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def claim_due(
    conn: Connection, now: datetime, lease_until: datetime, limit: int, scope: str = ""
) -> list[Claimed]:
    """Take due rows (and rows whose lease ran out) for this worker: transactional first."""
    rows = await conn.fetch(
        f"""UPDATE {SCHEMA}.scheduled s
            SET status = 'sending', lease_until = $2, attempts = s.attempts + 1, updated_at = $1
            WHERE s.id IN (
                SELECT id FROM {SCHEMA}.scheduled
                WHERE ((status = 'pending' AND due_at <= $1)
                       OR (status = 'sending' AND lease_until <= $1))
                  AND customer_id LIKE $4
                ORDER BY (category = 'transactional') DESC, due_at, id
                LIMIT $3 FOR UPDATE SKIP LOCKED)
            RETURNING s.*""",
        now,
        lease_until,
        limit,
        scope_pattern(scope),
    )
    claimed = [claimed_row(r) for r in rows]
    claimed.sort(key=lambda c: (c.category != "transactional", c.due_at, c.id))
    return claimed


async def lock_customer(conn: Connection, member: Member) -> bool:
    """A session lock per customer of a shop: one replica at a time checks the cap and sends."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(member)))


async def unlock_customer(conn: Connection, member: Member) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(member))


def _lock_key(member: Member) -> int:
    shop_id, customer_id = member
    # A space never occurs in an id: no two (shop, customer) pairs share a text.
    digest = hashlib.sha256(f"notify:customer:{shop_id} {customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def release(conn: Connection, message: Claimed, now: datetime) -> None:
    """Hand a claimed row back untouched (another replica is messaging this customer)."""
    await conn.execute(
        f"""UPDATE {SCHEMA}.scheduled SET status = 'pending', attempts = attempts - 1,
                lease_until = NULL, updated_at = $2
            WHERE id = $1 AND status = 'sending'""",
        message.id,
        now,
    )


async def set_outcome(
    conn: Connection,
    message: Claimed,
    *,
    status: str,
    now: datetime,
    due_at: datetime | None = None,
    give_back_attempt: bool = False,
) -> bool:
    """Move a claimed row on; False if it is no longer ours (its lease ran out and was taken)."""
    result = await conn.execute(
        f"""UPDATE {SCHEMA}.scheduled
            SET status = $2, due_at = coalesce($3, due_at), lease_until = NULL, updated_at = $4,
                attempts = attempts - $5::int
            WHERE id = $1 AND status = 'sending'""",
        message.id,
        status,
        due_at,
        now,
        1 if give_back_attempt else 0,
    )
    return result != "UPDATE 0"


async def log_attempts(
    conn: Connection, entries: Sequence[tuple[Claimed, str, str | None]], now: datetime
) -> None:
    """Append to the delivery log: (message, outcome, detail) per entry."""
    if not entries:
        return
    await conn.copy_records_to_table(
        "delivery_log",
        schema_name=SCHEMA,
        columns=[
            "scheduled_id",
            "shop_id",
            "customer_id",
            "trigger",
            "channel",
            "category",
            "attempt",
            "outcome",
            "detail",
            "at",
        ],
        records=[
            (
                m.id,
                m.shop_id,
                m.customer_id,
                m.trigger,
                m.channel,
                m.category,
                m.attempts,
                o,
                d,
                now,
            )
            for m, o, d in entries
        ],
    )


async def sent_in_window(conn: Connection, member: Member, channel: str, since: datetime) -> int:
    """Marketing messages the shop sent to this customer on this channel since `since`."""
    value = await conn.fetchval(
        f"""SELECT count(*) FROM {SCHEMA}.delivery_log
            WHERE shop_id = $4 AND customer_id = $1 AND channel = $2 AND outcome = 'sent'
              AND category = 'marketing' AND at > $3""",
        member[1],
        channel,
        since,
        member[0],
    )
    return int(value or 0)


async def ordered_since(conn: Connection, member: Member, since: datetime) -> bool:
    """Whether the customer ordered at the shop after `since`."""
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.orders WHERE shop_id = $1 "
            "AND customer_id = $2 AND ordered_at > $3)",
            *member,
            since,
        )
    )


async def backlog(conn: Connection, now: datetime, scope: str = "") -> tuple[int, float]:
    """Due messages not sent yet, and how long the oldest has waited past its time (seconds)."""
    return await queue_backlog(conn, "scheduled", "customer_id", now, scope)


async def queue_backlog(
    conn: Connection, table: str, scoped_by: str, now: datetime, scope: str
) -> tuple[int, float]:
    """A queue's due rows not sent yet (those whose `scoped_by` starts with `scope`), and how
    long the oldest has waited past its time (seconds): the scheduler's backlog gauges."""
    row = await conn.fetchrow(
        f"""SELECT count(*) AS n, min(due_at) AS oldest FROM {SCHEMA}.{table}
            WHERE status IN ('pending', 'sending') AND due_at <= $1 AND {scoped_by} LIKE $2""",
        now,
        scope_pattern(scope),
    )
    if row is None or row["oldest"] is None:
        return 0, 0.0
    return int(row["n"]), (now - row["oldest"]).total_seconds()
