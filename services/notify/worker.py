"""The delivery worker: claim due messages with SKIP LOCKED in short transactions and send them."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg
import structlog

from services.notify.adapters import recurring, schedule, staff_mail
from services.notify.delivery import Deliverer
from services.notify.staff_mail import StaffMailer
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
    # Mail to shops' staff (invitations, test sends), sent after each pass over customers'.
    staff: StaffMailer | None = None
    last_sweep: datetime | None = field(default=None)

    async def run_due(self, at: datetime | None = None) -> Counter[str]:
        """Process everything due at `at` (default: now) once, customers' messages then staff
        mail (counted as `staff_<outcome>`); returns outcomes counted."""
        outcomes = await self._run_scheduled(at)
        if self.staff is not None:
            outcomes.update(await self.staff.run_due(self.pool, at or self.clock.now()))
        return outcomes

    async def _run_scheduled(self, at: datetime | None) -> Counter[str]:
        """Customers' messages due at `at` (default: now).

        Claims follow one another without waiting for the last messages of a claim: once every
        customer of a claim holds a slot, the next claim is taken, and its customers take the
        slots as they free up. A customer found in two claims is served in order, one claim's
        messages after the other's.
        """
        now = at or self.clock.now()
        await self.sweep(now)
        settings = self.deliverer.settings
        delivery = _Delivery(self, settings.worker_concurrency)
        try:
            while True:
                lease = timedelta(seconds=settings.lease_s)
                try:
                    async with self.pool.acquire() as conn, conn.transaction():
                        claimed = await schedule.claim_due(
                            conn, now, now + lease, settings.worker_batch, settings.worker_scope
                        )
                except Exception:
                    await delivery.settle()  # what started finishes before the pass ends
                    raise
                await delivery.start(claimed, now)
                if len(claimed) < settings.worker_batch or delivery.should_stop():
                    return await delivery.finish()
                if at is None:
                    now = self.clock.now()
        finally:
            await delivery.cancel()  # anything still running: the pass was cancelled

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
        """The scheduler gauges of each queue (customers' `scheduled` messages, `staff_mail`):
        what is due and not sent, and the oldest one's delay."""
        now = self.clock.now()
        async with self.pool.acquire() as conn:
            queues = {
                "scheduled": await schedule.backlog(conn, now, self.deliverer.settings.worker_scope)
            }
            if self.staff is not None:
                scope = self.staff.settings.staff_mail_scope
                queues["staff_mail"] = await staff_mail.backlog(conn, now, scope)
        for queue, (due, oldest) in queues.items():
            metrics.SCHEDULER_BACKLOG.labels("notify", queue).set(due)
            metrics.SCHEDULER_OLDEST_DUE_AGE.labels("notify", queue).set(oldest)

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


class _Delivery:
    """The customers of a pass, up to `concurrency` at once (each with its own connection), one
    customer's messages in order. Every started message finishes before a transient failure
    ends the pass: none is left half-recorded. Finished customers are counted and let go as
    the pass goes on, so a long pass holds only what is in flight."""

    def __init__(self, worker: Worker, concurrency: int) -> None:
        self._worker = worker
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: list[asyncio.Task[list[str]]] = []
        self._latest: dict[tuple[str, str], asyncio.Task[list[str]]] = {}
        self._outcomes: Counter[str] = Counter()
        self._failure: BaseException | None = None
        self._stop = False

    async def start(self, claimed: list[schedule.Claimed], now: datetime) -> None:
        """Start the claim's customers; returns once each holds a slot or is done."""
        self._collect()
        by_customer: dict[tuple[str, str], list[schedule.Claimed]] = {}
        for message in claimed:
            by_customer.setdefault(message.member, []).append(message)
        started = []
        for customer, messages in by_customer.items():
            began = asyncio.Event()
            task = asyncio.create_task(
                self._one_customer(self._latest.get(customer), messages, now, began)
            )
            self._latest[customer] = task
            self._tasks.append(task)
            started.append(began.wait())
        await asyncio.gather(*started)

    async def _one_customer(
        self,
        before: asyncio.Task[list[str]] | None,
        messages: list[schedule.Claimed],
        now: datetime,
        began: asyncio.Event,
    ) -> list[str]:
        try:
            if before is not None:  # the customer's messages of an earlier claim come first
                await asyncio.wait([before])
            async with self._slots:
                began.set()
                async with self._worker.pool.acquire() as conn:
                    return [await self._worker._deliver(conn, m, now) for m in messages]
        finally:
            began.set()

    def _collect(self) -> None:
        """Count the customers done, keep their first failure, and let them go."""
        running = []
        for task in self._tasks:
            if not task.done():
                running.append(task)
            elif task.cancelled():
                self._stop = True
            elif (failure := task.exception()) is not None:
                self._failure = self._failure or failure
                self._stop = True
            else:
                outcomes = task.result()
                self._outcomes.update(outcomes)
                self._stop = self._stop or "busy" in outcomes
        self._tasks = running
        self._latest = {c: t for c, t in self._latest.items() if not t.done()}

    def should_stop(self) -> bool:
        """No more claims once a message found its customer busy or a customer failed."""
        self._collect()
        return self._stop

    async def settle(self) -> None:
        """Wait for every started customer."""
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._collect()

    async def finish(self) -> Counter[str]:
        """The outcomes once every customer is done; raises the first failure."""
        await self.settle()
        if self._failure is not None:
            raise self._failure
        return self._outcomes

    async def cancel(self) -> None:
        """Stop what is still running (nothing is, after `finish` or `settle`)."""
        running = [task for task in self._tasks if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
