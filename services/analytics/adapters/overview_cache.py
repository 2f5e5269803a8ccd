"""The overviews as last computed (`overviews_by_shape`), one row per shape, shop, zone and
currency: a release reads and writes only the rows of its own overview's shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.db import Connection


@dataclass(frozen=True, slots=True)
class OverviewKey:
    """Whose overview (None: the platform's, '' in the table), in which zone and currency."""

    shop: str | None
    time_zone: str
    currency: str

    @property
    def columns(self) -> tuple[str, str, str]:
        return (self.shop or "", self.time_zone, self.currency)


def key_of(shop_id: str, time_zone: str, currency: str) -> OverviewKey:
    return OverviewKey(shop_id or None, time_zone, currency)


async def read_marking(
    conn: Connection, schema: str, shape: str, key: OverviewKey, now: datetime
) -> str | None:
    """The stored overview's JSON, marked as requested now; None when there is none."""
    body = await conn.fetchval(
        f"""UPDATE {schema}.overviews_by_shape SET requested_at = greatest(requested_at, $4)
            WHERE shop_id = $1 AND time_zone = $2 AND currency = $3 AND shape = $5
            RETURNING body::text""",
        *key.columns,
        now,
        shape,
    )
    return None if body is None else str(body)


async def lock(conn: Connection, key: OverviewKey) -> None:
    """Wait for the session's lock of the key's first computation (released by `unlock`, or
    when the connection goes back to the pool)."""
    await conn.execute(
        "SELECT pg_advisory_lock(hashtextextended('analytics.overviews:' || $1 || ':' || $2"
        " || ':' || $3, 0))",
        *key.columns,
    )


async def unlock(conn: Connection, key: OverviewKey) -> None:
    await conn.execute(
        "SELECT pg_advisory_unlock(hashtextextended('analytics.overviews:' || $1 || ':' || $2"
        " || ':' || $3, 0))",
        *key.columns,
    )


async def store(
    conn: Connection, schema: str, shape: str, key: OverviewKey, body: str, *, computed_at: datetime
) -> None:
    """Keep an overview computed at `computed_at` (a row's requested_at stays)."""
    await conn.execute(
        f"""INSERT INTO {schema}.overviews_by_shape (shop_id, time_zone, currency, computed_at,
                                                     requested_at, body, shape)
            VALUES ($1, $2, $3, $4, $4, $5::jsonb, $6)
            ON CONFLICT (shape, shop_id, time_zone, currency) DO UPDATE
                SET computed_at = EXCLUDED.computed_at, body = EXCLUDED.body""",
        *key.columns,
        computed_at,
        body,
        shape,
    )


async def claim_due(
    conn: Connection,
    schema: str,
    shape: str,
    *,
    requested_since: datetime,
    computed_before: datetime,
) -> OverviewKey | None:
    """One row of the shape requested since `requested_since` and computed before
    `computed_before`, the oldest first, locked until the transaction ends; rows other
    processes hold are skipped."""
    row = await conn.fetchrow(
        f"""SELECT shop_id, time_zone, currency FROM {schema}.overviews_by_shape
            WHERE shape = $3 AND requested_at >= $1 AND computed_at < $2
            ORDER BY computed_at LIMIT 1
            FOR UPDATE SKIP LOCKED""",
        requested_since,
        computed_before,
        shape,
    )
    return None if row is None else key_of(row["shop_id"], row["time_zone"], row["currency"])
