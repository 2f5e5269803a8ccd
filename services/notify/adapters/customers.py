"""What the console reads of notify's customers: search, profile, messages with their log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.notify.adapters.projections import SCHEMA
from services.notify.adapters.schedule import schedule
from services.notify.domain.messages import TRIGGERS, PlannedMessage
from shared.db import Connection


async def search(
    conn: Connection, shop_id: str, query: str, pattern: str | None, limit: int
) -> list[asyncpg.Record]:
    """The shop's customers whose id or email is `query`, then those whose folded name, email
    or id holds `pattern` (a LIKE pattern, None for none), by name.

    Two statements rather than one with OR: with an OR across the three, PostgreSQL reads
    every row of the shop instead of using the key, the email index and the trigram index."""
    exact = await conn.fetch(
        f"""SELECT customer_id, name, email, locale, signed_up_at FROM (
                SELECT *, 0 AS rank FROM {SCHEMA}.customers
                WHERE shop_id = $1 AND customer_id = $2
                UNION ALL
                SELECT *, 1 AS rank FROM {SCHEMA}.customers
                WHERE shop_id = $1 AND lower(email) = lower($2) AND customer_id <> $2
            ) AS found
            ORDER BY rank, customer_id
            LIMIT $3""",
        shop_id,
        query,
        limit,
    )
    if pattern is None or len(exact) >= limit:
        return exact
    found = await conn.fetch(
        f"""SELECT customer_id, name, email, locale, signed_up_at
            FROM {SCHEMA}.customers
            WHERE shop_id = $1 AND search_text LIKE $2 AND NOT customer_id = ANY($3::text[])
            ORDER BY name NULLS LAST, customer_id
            LIMIT $4""",
        shop_id,
        pattern,
        [r["customer_id"] for r in exact],
        limit - len(exact),
    )
    return [*exact, *found]


async def profile(conn: Connection, shop_id: str, customer_id: str) -> asyncpg.Record | None:
    """The customer's row with the tier and balance notify has been told of, or None."""
    return await conn.fetchrow(
        f"""SELECT c.customer_id, c.name, c.email, c.locale, c.time_zone, c.birthday,
                   c.consent_email, c.consent_push, c.unsubscribed_email_at,
                   c.unsubscribed_push_at, c.push_subscription IS NOT NULL AS push_subscribed,
                   c.signed_up_at, t.tier, t.tier_name, p.balance
            FROM {SCHEMA}.customers c
            LEFT JOIN {SCHEMA}.tiers t USING (shop_id, customer_id)
            LEFT JOIN {SCHEMA}.points p USING (shop_id, customer_id)
            WHERE c.shop_id = $1 AND c.customer_id = $2""",
        shop_id,
        customer_id,
    )


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """A scheduled message and its delivery log, oldest entry first."""

    row: asyncpg.Record
    log: list[asyncpg.Record]


async def messages(
    conn: Connection, shop_id: str, customer_id: str, before: int | None, limit: int
) -> list[LoggedMessage]:
    """The customer's messages, newest first, with ids below `before` when given."""
    rows = await conn.fetch(
        f"""SELECT id, trigger, template, channel, category, status, due_at, updated_at, attempts
            FROM {SCHEMA}.scheduled
            WHERE shop_id = $1 AND customer_id = $2 AND ($3::bigint IS NULL OR id < $3)
            ORDER BY id DESC
            LIMIT $4""",
        shop_id,
        customer_id,
        before,
        limit,
    )
    entries = await conn.fetch(
        f"""SELECT scheduled_id, outcome, detail, at FROM {SCHEMA}.delivery_log
            WHERE scheduled_id = ANY($1::bigint[]) ORDER BY id""",
        [r["id"] for r in rows],
    )
    by_message: dict[int, list[asyncpg.Record]] = {}
    for entry in entries:
        by_message.setdefault(entry["scheduled_id"], []).append(entry)
    return [LoggedMessage(r, by_message.get(r["id"], [])) for r in rows]


class NotResendable(Exception):
    """A message of a trigger this release no longer plans: it has no template to send."""


async def resend(
    conn: Connection, shop_id: str, customer_id: str, message_id: int, *, key: str, now: datetime
) -> int | None:
    """A copy of the customer's message, due now, planned once per `key`; its id, or None when
    the customer has no such message. The worker's checks (consent, quiet hours, cap) apply."""
    row = await conn.fetchrow(
        f"""SELECT trigger, channel, payload FROM {SCHEMA}.scheduled
            WHERE shop_id = $1 AND customer_id = $2 AND id = $3""",
        shop_id,
        customer_id,
        message_id,
    )
    if row is None:
        return None
    if row["trigger"] not in TRIGGERS:
        raise NotResendable(row["trigger"])
    payload: dict[str, Any] = json.loads(row["payload"])
    dedup_key = f"resend:{message_id}:{key}"
    plan = PlannedMessage(
        dedup_key=dedup_key,
        shop_id=shop_id,
        customer_id=customer_id,
        trigger=row["trigger"],
        channel=row["channel"],
        due_at=now,
        payload=payload,
    )
    await schedule(conn, [plan], now)
    copy: int = await conn.fetchval(
        f"SELECT id FROM {SCHEMA}.scheduled WHERE shop_id = $1 AND dedup_key = $2",
        shop_id,
        dedup_key,
    )
    return copy
