"""SQL of sign-in sessions and of the login throttle's counters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.console.adapters.accounts import SCHEMA
from shared.db import Connection


@dataclass(frozen=True)
class SessionRow:
    user_id: str
    csrf_token: str
    last_seen_at: datetime
    expires_at: datetime


async def insert_session(
    conn: Connection,
    *,
    session_sha256: str,
    user_id: str,
    csrf_token: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.sessions
                (session_sha256, user_id, csrf_token, created_at, last_seen_at, expires_at)
            VALUES ($1, $2, $3, $4, $4, $5)""",
        session_sha256,
        user_id,
        csrf_token,
        now,
        expires_at,
    )


async def session(conn: Connection, session_sha256: str) -> SessionRow | None:
    row = await conn.fetchrow(
        f"""SELECT user_id, csrf_token, last_seen_at, expires_at FROM {SCHEMA}.sessions
            WHERE session_sha256 = $1""",
        session_sha256,
    )
    return None if row is None else SessionRow(**dict(row))


async def touch_session(conn: Connection, session_sha256: str, now: datetime) -> None:
    await conn.execute(
        f"UPDATE {SCHEMA}.sessions SET last_seen_at = $2 WHERE session_sha256 = $1",
        session_sha256,
        now,
    )


async def delete_session(conn: Connection, session_sha256: str) -> None:
    await conn.execute(f"DELETE FROM {SCHEMA}.sessions WHERE session_sha256 = $1", session_sha256)


async def delete_sessions_of(conn: Connection, user_id: str) -> None:
    await conn.execute(f"DELETE FROM {SCHEMA}.sessions WHERE user_id = $1", user_id)


async def failures(conn: Connection, bucket: str, *, now: datetime, window: timedelta) -> int:
    """The failures counted in the bucket's current window: 0 once the window is over, and 0
    when the window starts after `now` (the clock was stepped back), so a clock correction
    never holds an email or an address for longer than one window."""
    count = await conn.fetchval(
        f"""SELECT failures FROM {SCHEMA}.login_throttle
            WHERE bucket = $1 AND window_start > $2 AND window_start <= $3""",
        bucket,
        now - window,
        now,
    )
    return int(count or 0)


async def count_failure(conn: Connection, bucket: str, *, now: datetime, window: timedelta) -> int:
    """One more failure in the bucket, in a new window when the last one is over or starts
    after `now`."""
    count = await conn.fetchval(
        f"""INSERT INTO {SCHEMA}.login_throttle AS t (bucket, window_start, failures)
            VALUES ($1, $2, 1)
            ON CONFLICT (bucket) DO UPDATE SET
                window_start = CASE WHEN t.window_start <= $3 OR t.window_start > $2
                                    THEN $2 ELSE t.window_start END,
                failures = CASE WHEN t.window_start <= $3 OR t.window_start > $2
                                THEN 1 ELSE t.failures + 1 END
            RETURNING failures""",
        bucket,
        now,
        now - window,
    )
    return int(count)


async def window_ends(conn: Connection, bucket: str, *, window: timedelta) -> datetime | None:
    start = await conn.fetchval(
        f"SELECT window_start FROM {SCHEMA}.login_throttle WHERE bucket = $1", bucket
    )
    return None if start is None else start + window


async def reset(conn: Connection, bucket: str) -> None:
    await conn.execute(f"DELETE FROM {SCHEMA}.login_throttle WHERE bucket = $1", bucket)
