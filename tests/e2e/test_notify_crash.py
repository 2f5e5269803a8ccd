"""Killing notify in the middle of a schedule and starting it again sends each message once."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import Counter
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from notify_support import Captured, SmtpInbox, signed_up
from support import encoded, eventually, unique

from shared.infrastructure import Endpoints

CUSTOMERS = 30
KILL_AFTER = 8  # accepted messages before notify is killed in the middle of the next one


async def test_sigkill_mid_schedule_then_restart_sends_each_message_exactly_once(
    infrastructure: Endpoints, spawn: type
) -> None:
    scope = unique("e2e-nt")
    inbox = SmtpInbox().start()
    env = (
        ("LOYALTY_SMTP_PORT", str(inbox.port)),
        ("LOYALTY_MAIL_FROM", "Loyalty <loyalty@shop.example>"),
        ("LOYALTY_UNSUBSCRIBE_SECRET", "e" * 40),
        ("LOYALTY_WORKER_SCOPE", scope),
        ("LOYALTY_WORKER_BATCH", "5"),
        ("LOYALTY_WORKER_IDLE_S", "0.2"),
        ("LOYALTY_LEASE_S", "3"),
        ("LOYALTY_QUIET_HOURS_START", "00:00"),  # no quiet hours: the test runs on real time
        ("LOYALTY_QUIET_HOURS_END", "00:00"),
    )
    notify = spawn("notify", None, *env)
    killed = threading.Event()

    def kill_in_the_middle(message: Captured) -> bool:
        """Refuse (and kill the sender) once KILL_AFTER messages were accepted."""
        if killed.is_set() or len(inbox.messages) < KILL_AFTER:
            return True
        killed.set()
        notify.process.send_signal(signal.SIGKILL)
        return False

    inbox.before_accept = kill_in_the_middle
    db = await asyncpg.connect(infrastructure.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await asyncio.to_thread(notify.start)
        customers = [f"{scope}-{n:02d}" for n in range(CUSTOMERS)]
        now = datetime.now(UTC)
        for customer in customers:
            event = signed_up(customer, now, email=f"{customer}@mail.example")
            await producer.send("shop.customers", encoded(event), key=customer.encode())
        await producer.flush()
        await eventually(lambda: asyncio.to_thread(killed.is_set), bool, timeout=60)
        await asyncio.to_thread(notify.process.wait, 10)
        in_flight = await db.fetchval(
            """SELECT count(*) FROM notify.scheduled
               WHERE customer_id LIKE $1 AND status = 'sending'""",
            f"{scope}%",
        )
        accepted_before_restart = len(inbox.messages)
        restarted = spawn("notify", notify.port, *env)
        await asyncio.to_thread(restarted.start)
        await eventually(lambda: _count(inbox), lambda n: n >= CUSTOMERS, timeout=90)
        await asyncio.sleep(4)  # past another lease: a duplicate would arrive now
        sent_rows = await db.fetchval(
            """SELECT count(*) FROM notify.scheduled
               WHERE customer_id LIKE $1 AND status = 'sent'""",
            f"{scope}%",
        )
        sent_log = await db.fetchval(
            """SELECT count(*) FROM notify.delivery_log
               WHERE customer_id LIKE $1 AND outcome = 'sent'""",
            f"{scope}%",
        )
    finally:
        await producer.stop()
        await db.close()
        inbox.stop()

    by_message_id = Counter(m.message_id for m in inbox.messages)
    recipients = Counter(m.rcpt_tos[0] for m in inbox.messages)
    assert accepted_before_restart == KILL_AFTER
    assert in_flight >= 1  # the kill left at least one message claimed and unfinished
    assert len(by_message_id) == CUSTOMERS
    assert set(by_message_id.values()) == {1}
    assert recipients == Counter(f"{c}@mail.example" for c in customers)
    assert sent_rows == sent_log == CUSTOMERS


async def _count(inbox: SmtpInbox) -> int:
    with inbox.lock:
        return len(inbox.messages)
