"""Scheduled work of a service: run now, then every interval, surviving database outages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from shared.retry import is_transient
from shared.runtime import Runtime

log = structlog.get_logger(__name__)


async def every(
    runtime: Runtime,
    interval_s: float,
    work: Callable[[asyncpg.Pool], Awaitable[object]],
    *,
    name: str = "scheduled_work",
) -> None:
    """Background work of the service: `work` at start and then every `interval_s`, waking the
    outbox relay after each round; a transient failure (database away) waits for the next
    round, anything else ends the task loudly."""
    while True:
        try:
            await work(runtime.require_pool())
            runtime.rounds[name] = runtime.rounds.get(name, 0) + 1
            if runtime.relay is not None:
                runtime.relay.wake()
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning(f"{name}_retry", error=repr(exc), delay_s=interval_s)
        await asyncio.sleep(interval_s)
