"""SQL of invitations to a shop's console, and the staff.invited events they send."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from asyncpg import Record
from pydantic import BaseModel

from services.console.adapters.accounts import SCHEMA
from services.console.domain.roles import Role
from shared.db import Connection
from shared.events import encode_event, make_event
from shared.outbox import OutboxMessage, enqueue

TOPIC: Final = "loyalty.console"
SOURCE: Final = "loyalty/console"


@dataclass(frozen=True)
class Invitation:
    invitation_id: str
    shop_id: str
    email: str
    role: Role
    invited_by: str
    created_at: datetime
    expires_at: datetime


_COLUMNS: Final = "invitation_id, shop_id, email, role, invited_by, created_at, expires_at"


def _invitation(row: Record) -> Invitation:
    return Invitation(
        invitation_id=row["invitation_id"],
        shop_id=row["shop_id"],
        email=row["email"],
        role=Role(row["role"]),
        invited_by=row["invited_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


async def revoke_open(conn: Connection, *, shop_id: str, email: str, now: datetime) -> None:
    """Older invitations of that address to that shop stop working: the newest link counts."""
    await conn.execute(
        f"""UPDATE {SCHEMA}.invitations SET revoked_at = $3
            WHERE shop_id = $1 AND lower(email) = lower($2)
              AND accepted_at IS NULL AND revoked_at IS NULL""",
        shop_id,
        email,
        now,
    )


async def insert(conn: Connection, invitation: Invitation, *, token_sha256: str) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.invitations ({_COLUMNS}, token_sha256)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        invitation.invitation_id,
        invitation.shop_id,
        invitation.email,
        invitation.role.value,
        invitation.invited_by,
        invitation.created_at,
        invitation.expires_at,
        token_sha256,
    )


async def open_invitations(conn: Connection, shop_id: str, now: datetime) -> list[Invitation]:
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM {SCHEMA}.invitations
            WHERE shop_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
              AND expires_at > $2
            ORDER BY created_at DESC""",
        shop_id,
        now,
    )
    return [_invitation(r) for r in rows]


async def usable(conn: Connection, token_sha256: str, now: datetime) -> Invitation | None:
    row = await conn.fetchrow(
        f"""SELECT {_COLUMNS} FROM {SCHEMA}.invitations
            WHERE token_sha256 = $1 AND accepted_at IS NULL AND revoked_at IS NULL
              AND expires_at > $2""",
        token_sha256,
        now,
    )
    return None if row is None else _invitation(row)


async def take(conn: Connection, token_sha256: str, now: datetime) -> Invitation | None:
    """Mark the invitation accepted, once: a second use (or a concurrent one) finds nothing."""
    row = await conn.fetchrow(
        f"""UPDATE {SCHEMA}.invitations SET accepted_at = $2
            WHERE token_sha256 = $1 AND accepted_at IS NULL AND revoked_at IS NULL
              AND expires_at > $2
            RETURNING {_COLUMNS}""",
        token_sha256,
        now,
    )
    return None if row is None else _invitation(row)


async def revoke(conn: Connection, *, shop_id: str, invitation_id: str, now: datetime) -> bool:
    status = await conn.execute(
        f"""UPDATE {SCHEMA}.invitations SET revoked_at = $3
            WHERE shop_id = $1 AND invitation_id = $2
              AND accepted_at IS NULL AND revoked_at IS NULL""",
        shop_id,
        invitation_id,
        now,
    )
    return bool(status == "UPDATE 1")


async def announce(
    conn: Connection, type_: str, data: BaseModel, *, shop_id: str, at: datetime
) -> None:
    """Enqueue one loyalty.console event in the caller's transaction, keyed by its shop."""
    event = make_event(type_, source=SOURCE, subject=shop_id, data=data, time=at)
    await enqueue(conn, SCHEMA, [OutboxMessage(TOPIC, shop_id.encode(), encode_event(event))])
