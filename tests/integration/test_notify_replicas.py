"""Several workers share one schedule: SKIP LOCKED claims, and each message goes once."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import SmtpInbox, cart_abandoned, notify_customer, signed_up
from prometheus_client import REGISTRY
from support import encoded, eventually

from services.notify.bootstrap import make_worker
from services.notify.settings import NotifySettings
from services.notify.worker import Worker
from shared.clock import FixedClock
from shared.runtime import Runtime

T0 = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City
CUSTOMERS = 24


async def close_channels(worker: Worker) -> None:
    for channel in worker.deliverer.channels.values():
        await channel.close()


async def test_two_workers_with_their_own_pools_send_each_message_exactly_once(
    notify: tuple[AsgiFastStream, Runtime],
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
) -> None:
    customers = [notify_customer() for _ in range(CUSTOMERS)]
    for customer in customers:
        event = signed_up(customer, T0, email=f"{customer}@mail.example")
        await producer.send("shop.customers", encoded(event), key=customer.encode())
    await producer.flush()
    await eventually(
        lambda: db.fetchval(
            "SELECT count(*) FROM notify.scheduled WHERE customer_id = ANY($1::text[])", customers
        ),
        lambda n: n == CUSTOMERS,
    )
    settings = notify_settings.model_copy(update={"worker_batch": 4, "worker_concurrency": 2})
    at = T0 + timedelta(minutes=1)
    pools = [
        await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=3)
        for _ in range(2)
    ]
    workers = [make_worker(pool, settings, FixedClock(at)) for pool in pools]
    try:
        outcomes = await asyncio.gather(*(w.run_due(at) for w in workers))
    finally:
        for worker in workers:
            await close_channels(worker)
        for pool in pools:
            await pool.close()

    received = Counter(m.rcpt_tos[0] for c in customers for m in smtp.to(f"{c}@mail.example"))
    assert received == Counter(f"{c}@mail.example" for c in customers)
    assert all(o["sent"] > 0 for o in outcomes)
    statuses = await db.fetch(
        "SELECT status, attempts FROM notify.scheduled WHERE customer_id = ANY($1::text[])",
        customers,
    )
    assert {(r["status"], r["attempts"]) for r in statuses} == {("sent", 1)}


async def test_the_background_loop_sends_what_comes_due_and_reports_the_backlog(
    notify: tuple[AsgiFastStream, Runtime],
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
) -> None:
    customer = notify_customer()
    at = T0 + timedelta(days=1)
    clock = FixedClock(at - timedelta(hours=1))
    settings = notify_settings.model_copy(update={"worker_idle_s": 0.05})
    worker = make_worker(notify[1].require_pool(), settings, clock)
    loop = asyncio.create_task(worker.run_forever())
    try:
        event = signed_up(customer, at, email=f"{customer}@mail.example")
        await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM notify.scheduled WHERE customer_id = $1", customer
            ),
            lambda n: n == 1,
        )
        await asyncio.sleep(0.3)
        early = len(smtp.to(f"{customer}@mail.example"))
        clock.set(at + timedelta(minutes=5))
        await eventually(lambda: _received(smtp, customer), lambda n: n == 1, timeout=10)
        await asyncio.sleep(0.2)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop

    assert early == 0
    assert len(smtp.to(f"{customer}@mail.example")) == 1
    for queue in ("scheduled", "staff_mail"):
        labels = {"service": "notify", "queue": queue}
        assert REGISTRY.get_sample_value("loyalty_scheduler_backlog", labels) == 0


async def _received(smtp: SmtpInbox, customer: str) -> int:
    return len(smtp.to(f"{customer}@mail.example"))


async def test_a_customer_in_consecutive_claims_is_served_in_order_and_never_busy_with_itself(
    notify: tuple[AsgiFastStream, Runtime],
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
) -> None:
    """Claims of one message each follow one another while earlier ones are being sent: the
    customer's next message waits for the previous instead of finding the customer busy."""
    customer = notify_customer()
    email = f"{customer}@mail.example"
    events = [signed_up(customer, T0, email=email)]
    events += [cart_abandoned(customer, T0 + timedelta(minutes=n)) for n in range(2)]
    for event in events:
        topic = "shop.customers" if event.type == "customer.signed_up" else "shop.carts"
        await producer.send(topic, encoded(event), key=customer.encode())
    await producer.flush()
    rows = await eventually(
        lambda: db.fetch(
            "SELECT id, message_id, category, due_at FROM notify.scheduled WHERE customer_id = $1",
            customer,
        ),
        lambda found: len(found) >= 3,
    )
    settings = notify_settings.model_copy(
        update={
            "worker_batch": 1,
            "worker_concurrency": 4,
            "frequency_cap": 100,
            "quiet_hours_start": "00:00",
            "quiet_hours_end": "00:00",
        }
    )
    at = max(r["due_at"] for r in rows) + timedelta(minutes=1)
    worker = make_worker(db, settings, FixedClock(at))
    try:
        outcomes = await worker.run_due(at)
    finally:
        await close_channels(worker)

    assert outcomes["busy"] == 0
    assert outcomes["sent"] == len(rows)
    claim_order = sorted(
        rows, key=lambda r: (r["category"] != "transactional", r["due_at"], r["id"])
    )
    sent = [m.message_id for m in smtp.to(email)]
    assert sent == [f"<notify-{r['message_id']}@shop.example>" for r in claim_order]
