"""Pruning what only guards against repeats: inbox rows and idempotency keys past their window.

An inbox row makes a redelivered event a duplicate. It is needed for as long as the event can
come again: the topic's retention, a consumer group reset to an earlier offset, a dead letter
replayed. Past that window it only takes space, and the inbox grows by one row per event for
ever. Idempotency keys answer a client's retry of an HTTP request with the first answer; past
their window a retry is a new request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

# Kafka keeps records 7 days by default: a window shorter than that (plus a day) would let a
# redelivered event be applied a second time.
MIN_WINDOW = timedelta(days=8)


@dataclass(frozen=True, slots=True)
class Prunable:
    """A table whose rows older than the window can go, by the time column that dates them."""

    schema: str
    table: str
    column: str

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"


def prunables(schemas: list[str]) -> list[Prunable]:
    """Every service's inbox, earn's idempotency keys, and notify's staff mail (its rows hold
    staff addresses; a staff mail is one per event id, like an inbox row)."""
    found = [Prunable(schema, "inbox", "received_at") for schema in schemas]
    if "earn" in schemas:
        found.append(Prunable("earn", "idempotency_keys", "created_at"))
    if "notify" in schemas:
        found.append(Prunable("notify", "staff_mail", "created_at"))
    return found


async def count_older(pool: asyncpg.Pool, target: Prunable, before: datetime) -> int:
    count: int = await pool.fetchval(
        f"SELECT count(*) FROM {target.name} WHERE {target.column} < $1",
        before,
    )
    return count


async def prune(
    pool: asyncpg.Pool,
    target: Prunable,
    before: datetime,
    *,
    chunk: int = 10_000,
    progress: Callable[[int], object] = lambda _: None,
) -> int:
    """Delete the rows dated before `before`, `chunk` rows per transaction (short locks, no long
    transaction holding back vacuum); returns how many were deleted."""
    deleted = 0
    while True:
        status = await pool.execute(
            f"""DELETE FROM {target.name} WHERE ctid = ANY(ARRAY(
                    SELECT ctid FROM {target.name} WHERE {target.column} < $1 LIMIT $2))""",
            before,
            chunk,
        )
        done = int(status.split()[-1])
        deleted += done
        progress(done)
        if done < chunk:
            return deleted


def check_window(window: timedelta) -> None:
    if window < MIN_WINDOW:
        msg = (
            f"a window of {window.days} day(s) is shorter than {MIN_WINDOW.days} days: Kafka keeps"
            " records 7 days by default, and an event redelivered after its inbox row is gone"
            " would be applied twice"
        )
        raise ValueError(msg)
