"""The delivery worker: claim due messages with SKIP LOCKED in short transactions and send them."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import structlog

from services.notify.adapters import recurring, schedule
from services.notify.delivery import Deliverer
from shared import metrics
from shared.clock import Clock
from shared.db import Connection
from shared.retry import Backoff, is_transient

log = structlog.get_logger(__name__)

SWEEP_EVERY = timedelta(minutes=10)


@dataclass
class Worker:
    """Sends what is due. Any number of workers, in any number of processes, share the work."""

    pool: asyncpg.Pool
    clock: Clock
    deliverer: Deliverer
    last_sweep: datetime | None = field(default=None)

    async def run_due(self, at: datetime | None = None) -> Counter[str]:
        """Process everything due at `at` (default: now) once; returns outcomes counted."""
        now = at or self.clock.now()
        await self.sweep(now)
        outcomes: Counter[str] = Counter()
        settings = self.deliverer.settings
        while True:
            lease = timedelta(seconds=settings.lease_s)
            async with self.pool.acquire() as conn, conn.transaction():
                claimed = await schedule.claim_due(
                    conn, now, now + lease, settings.worker_batch, settings.worker_scope
                )
            outcomes.update(await self._deliver_all(claimed, now))
            if len(claimed) < settings.worker_batch or outcomes["busy"]:
                return outcomes
            if at is None:
                now = self.clock.now()

    async def _deliver_all(self, claimed: list[schedule.Claimed], now: datetime) -> list[str]:
        """Customers in parallel (up to worker_concurrency, each with its own connection), one
        customer's messages in order, transactional first. Every started message finishes
        before a transient failure ends the pass: none is left half-recorded."""
        slots = asyncio.Semaphore(self.deliverer.settings.worker_concurrency)
        by_customer: dict[str, list[schedule.Claimed]] = {}
        for message in claimed:
            by_customer.setdefault(message.customer_id, []).append(message)

        async def one_customer(messages: list[schedule.Claimed]) -> list[str]:
            async with slots, self.pool.acquire() as conn:
                return [await self._deliver(conn, m, now) for m in messages]

        results = await asyncio.gather(
            *(one_customer(m) for m in by_customer.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return [outcome for r in results if isinstance(r, list) for outcome in r]

    async def _deliver(self, conn: Connection, message: schedule.Claimed, now: datetime) -> str:
        try:
            return await self.deliverer.deliver(conn, message, now)
        except Exception as exc:
            if is_transient(exc):
                raise  # the database is away: end the pass; the lease brings the row back
            # One message's bug must not hold up the others: its lease expires, it is tried
            # again and, after max_attempts, recorded as failed.
            log.exception("notification_crashed", notification_id=message.notification_id)
            return "crashed"

    async def measure(self) -> None:
        """The scheduler gauges: what is due and not sent, and the oldest one's delay."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            due, oldest = await schedule.backlog(conn, now, self.deliverer.settings.worker_scope)
        metrics.SCHEDULER_BACKLOG.labels("notify").set(due)
        metrics.SCHEDULER_OLDEST_DUE_AGE.labels("notify").set(oldest)

    async def sweep(self, now: datetime) -> None:
        """Plan birthdays and win-backs at most every SWEEP_EVERY (always for run-due)."""
        if self.last_sweep is not None and now - self.last_sweep < SWEEP_EVERY:
            return
        settings = self.deliverer.settings
        async with self.pool.acquire() as conn:
            birthdays = await recurring.plan_birthdays(
                conn,
                now,
                voucher=settings.birthday_voucher,
                zone="UTC",
                scope=settings.worker_scope,
            )
            winbacks = await recurring.plan_winbacks(
                conn,
                now,
                days=settings.winback_days,
                coupon=settings.winback_coupon,
                min_order=settings.winback_min_order,
                scope=settings.worker_scope,
            )
        self.last_sweep = now
        if birthdays or winbacks:
            log.info("recurring_planned", birthdays=birthdays, winbacks=winbacks)

    async def run_forever(self) -> None:
        """The service's background loop: a pass, then a pause when nothing was due."""
        backoff = Backoff(cap=self.deliverer.settings.worker_idle_s * 4)
        try:
            while True:
                try:
                    outcomes = await self.run_due()
                    await self.measure()
                    backoff.reset()
                except Exception as exc:
                    # A pass that fails is logged (a bug with its traceback) and tried again:
                    # a worker that stopped for good would leave every customer unmessaged.
                    if is_transient(exc):
                        log.warning("delivery_pass_retry", error=repr(exc))
                    else:
                        log.exception("delivery_pass_crashed")
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if outcomes:
                    log.info("delivery_pass", **dict(outcomes))
                if not outcomes or outcomes["busy"]:
                    await asyncio.sleep(self.deliverer.settings.worker_idle_s)
        finally:
            for channel in self.deliverer.channels.values():
                await channel.close()
