"""Staff mail rows (notify.staff_mail): added from loyalty.console, claimed, moved on."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.notify.adapters.projections import SCHEMA
from services.notify.adapters.schedule import queue_backlog, scope_pattern
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class StaffMail:
    """One mail to a shop's staff, as the console asked for it."""

    event_id: str
    shop_id: str
    kind: str  # 'staff_invitation' or 'test_send', the metric's trigger
    template: str
    locale: str
    to_email: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClaimedStaffMail:
    """A staff mail this worker holds (status 'sending', under a lease)."""

    mail: StaffMail
    attempts: int
    lease_until: datetime


async def add(conn: Connection, mails: Sequence[StaffMail], due_at: datetime) -> int:
    """Insert new rows; an event id seen before is left as it is. Returns rows added."""
    if not mails:
        return 0
    rows = await conn.fetch(
        f"""INSERT INTO {SCHEMA}.staff_mail (event_id, shop_id, kind, template, locale,
                to_email, payload, due_at, created_at, updated_at)
            SELECT e, s, k, t, l, m, p::jsonb, $8, $8, $8
            FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                        $6::text[], $7::text[]) AS u(e, s, k, t, l, m, p)
            ON CONFLICT (event_id) DO NOTHING RETURNING event_id""",
        [m.event_id for m in mails],
        [m.shop_id for m in mails],
        [m.kind for m in mails],
        [m.template for m in mails],
        [m.locale for m in mails],
        [m.to_email for m in mails],
        [json.dumps(m.payload) for m in mails],
        due_at,
    )
    return len(rows)


async def claim_due(
    conn: Connection, now: datetime, lease_until: datetime, limit: int, scope: str = ""
) -> list[ClaimedStaffMail]:
    """Take due rows (and rows whose lease ran out) of shops in `scope`, oldest first."""
    rows = await conn.fetch(
        f"""UPDATE {SCHEMA}.staff_mail m
            SET status = 'sending', lease_until = $2, attempts = m.attempts + 1, updated_at = $1
            WHERE m.event_id IN (
                SELECT event_id FROM {SCHEMA}.staff_mail
                WHERE ((status = 'pending' AND due_at <= $1)
                       OR (status = 'sending' AND lease_until <= $1))
                  AND shop_id LIKE $4
                ORDER BY due_at, event_id
                LIMIT $3 FOR UPDATE SKIP LOCKED)
            RETURNING m.*""",
        now,
        lease_until,
        limit,
        scope_pattern(scope),
    )
    return [_claimed(row) for row in rows]


async def backlog(conn: Connection, now: datetime, scope: str = "") -> tuple[int, float]:
    """Due staff mail of shops in `scope` not sent yet, and how long the oldest has waited past
    its time (seconds), as schedule.backlog counts customers' messages."""
    return await queue_backlog(conn, "staff_mail", "shop_id", now, scope)


def _claimed(row: asyncpg.Record) -> ClaimedStaffMail:
    mail = StaffMail(
        event_id=row["event_id"],
        shop_id=row["shop_id"],
        kind=row["kind"],
        template=row["template"],
        locale=row["locale"],
        to_email=row["to_email"],
        payload=json.loads(row["payload"]),
    )
    return ClaimedStaffMail(mail, row["attempts"], row["lease_until"])


async def finish(
    conn: Connection, claimed: ClaimedStaffMail, *, status: str, error: str | None, now: datetime
) -> bool:
    """Sent or failed for good: the link's secret leaves the row. False when the row is no
    longer this worker's (its lease ran out and another took it)."""
    result = await conn.execute(
        f"""UPDATE {SCHEMA}.staff_mail
            SET status = $2, error = $3, lease_until = NULL, updated_at = $4,
                payload = payload - 'accept_url'
            WHERE event_id = $1 AND status = 'sending' AND lease_until = $5""",
        claimed.mail.event_id,
        status,
        error,
        now,
        claimed.lease_until,
    )
    return result != "UPDATE 0"


async def retry(
    conn: Connection,
    claimed: ClaimedStaffMail,
    *,
    error: str,
    due_at: datetime,
    now: datetime,
    give_back_attempt: bool,
) -> bool:
    """Again at `due_at`; a try that was the channel's fault is given back."""
    result = await conn.execute(
        f"""UPDATE {SCHEMA}.staff_mail
            SET status = 'pending', error = $2, due_at = $3, lease_until = NULL, updated_at = $4,
                attempts = attempts - $6::int
            WHERE event_id = $1 AND status = 'sending' AND lease_until = $5""",
        claimed.mail.event_id,
        error,
        due_at,
        now,
        claimed.lease_until,
        1 if give_back_attempt else 0,
    )
    return result != "UPDATE 0"
