"""Killing notify in the middle of a schedule and starting it again sends each message once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from notify_support import Captured, SmtpInbox, signed_up
from support import encoded, eventually, unique

CUSTOMERS = 30
KILL_AFTER = 8  # accepted messages before notify is killed in the middle of the next one
# 10:00 in Ho Chi Minh City, years ahead: no worker running on real time takes these messages.
T0 = datetime(2032, 3, 1, 3, 0, tzinfo=UTC)


def run_due(at: datetime, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "notify", "run-due", "--at", at.isoformat()],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_sigkill_mid_schedule_then_restart_sends_each_message_exactly_once(
    infrastructure: Endpoints, spawn: type
) -> None:
    scope = unique("e2e-nt")
    inbox = SmtpInbox().start()
    env = {
        "LOYALTY_SMTP_PORT": str(inbox.port),
        "LOYALTY_MAIL_FROM": "Loyalty <loyalty@shop.example>",
        "LOYALTY_UNSUBSCRIBE_SECRET": "e" * 40,
        "LOYALTY_WORKER_SCOPE": scope,
        # Its run-due passes send no other session's staff mail.
        "LOYALTY_STAFF_MAIL_SCOPE": scope,
        "LOYALTY_WORKER_BATCH": "5",
        # One message at a time: the kill lands inside exactly one SMTP transaction, while the
        # rest of the claimed batch waits, unsent, under its lease.
        "LOYALTY_WORKER_CONCURRENCY": "1",
        "LOYALTY_LEASE_S": "30",
    }
    # The service consumes the sign-ups; its own worker is off, the passes below send.
    consumer = spawn("notify", None, *env.items(), ("LOYALTY_WORKER_ENABLED", "false"))
    killed = threading.Event()
    first_pass: list[subprocess.Popen[bytes]] = []

    def kill_in_the_middle(message: Captured) -> bool:
        """Once KILL_AFTER messages were accepted, kill the sender before answering the next."""
        if killed.is_set() or len(inbox.messages) < KILL_AFTER:
            return True
        killed.set()
        first_pass[0].send_signal(signal.SIGKILL)
        return False

    inbox.before_accept = kill_in_the_middle
    db = await asyncpg.connect(infrastructure.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    customers = [f"{scope}-{n:02d}" for n in range(CUSTOMERS)]
    try:
        await asyncio.to_thread(consumer.start)
        for customer in customers:
            event = signed_up(customer, T0, email=f"{customer}@mail.example")
            await producer.send("shop.customers", encoded(event), key=customer.encode())
        await producer.flush()
        await eventually(lambda: _count_rows(db, scope, "pending"), lambda n: n == CUSTOMERS)

        first_pass.append(run_due(T0 + timedelta(minutes=1), env))
        exit_code = await asyncio.to_thread(_exit_code, first_pass[0])
        in_flight = await _count_rows(db, scope, "sending")
        accepted_before_restart = len(inbox.messages)
        too_soon = await asyncio.to_thread(_finish, run_due(T0 + timedelta(minutes=1), env))
        after_lease = await asyncio.to_thread(_finish, run_due(T0 + timedelta(minutes=2), env))
        sent_rows = await _count_rows(db, scope, "sent")
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
    assert exit_code == -signal.SIGKILL
    assert accepted_before_restart == KILL_AFTER
    assert in_flight >= 1  # the kill left claimed, unfinished messages behind
    assert "sent=" in too_soon  # a restart sends what was never claimed...
    assert "sent=" in after_lease  # ...and, once their lease ran out, the orphans
    assert len(by_message_id) == CUSTOMERS
    assert set(by_message_id.values()) == {1}
    assert recipients == Counter(f"{c}@mail.example" for c in customers)
    assert sent_rows == sent_log == CUSTOMERS


async def _count_rows(db: asyncpg.Connection, scope: str, status: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM notify.scheduled WHERE customer_id LIKE $1 AND status = $2",
            f"{scope}%",
            status,
        )
    )


def _exit_code(process: subprocess.Popen[bytes]) -> int:
    process.communicate(timeout=60)  # waits, and closes the output pipe
    return process.returncode


def _finish(process: subprocess.Popen[bytes]) -> str:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output.decode()[-3000:]
    return output.decode()


async def test_sigkill_of_the_service_mid_schedule_then_restart_sends_each_message_once(
    infrastructure: Endpoints, spawn: type
) -> None:
    """The same with the service's own background worker, on real time, and a short lease."""
    scope = unique("e2e-ns")
    inbox = SmtpInbox().start()
    env = (
        ("LOYALTY_SMTP_PORT", str(inbox.port)),
        ("LOYALTY_MAIL_FROM", "Loyalty <loyalty@shop.example>"),
        ("LOYALTY_UNSUBSCRIBE_SECRET", "e" * 40),
        ("LOYALTY_WORKER_SCOPE", scope),
        ("LOYALTY_STAFF_MAIL_SCOPE", scope),
        ("LOYALTY_WORKER_BATCH", "5"),
        ("LOYALTY_WORKER_CONCURRENCY", "1"),
        ("LOYALTY_WORKER_IDLE_S", "0.2"),
        ("LOYALTY_LEASE_S", "3"),
        # The refusal that goes with the kill may reach the worker before the signal does; it
        # then retries that message, and must do so within the test's wait.
        ("LOYALTY_RETRY_BASE_S", "1"),
        ("LOYALTY_QUIET_HOURS_START", "00:00"),  # no quiet hours: this runs on real time
        ("LOYALTY_QUIET_HOURS_END", "00:00"),
    )
    service = spawn("notify", None, *env)
    killed = threading.Event()

    def kill_in_the_middle(message: Captured) -> bool:
        if killed.is_set() or len(inbox.messages) < KILL_AFTER:
            return True
        killed.set()
        service.process.send_signal(signal.SIGKILL)
        return False

    inbox.before_accept = kill_in_the_middle
    db = await asyncpg.connect(infrastructure.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    customers = [f"{scope}-{n:02d}" for n in range(CUSTOMERS)]
    try:
        await asyncio.to_thread(service.start)
        now = datetime.now(UTC)
        for customer in customers:
            event = signed_up(customer, now, email=f"{customer}@mail.example")
            await producer.send("shop.customers", encoded(event), key=customer.encode())
        await producer.flush()
        await eventually(lambda: asyncio.to_thread(killed.is_set), bool, timeout=90)
        await asyncio.to_thread(service.process.wait, 10)
        in_flight = await _count_rows(db, scope, "sending")
        accepted_before_restart = len(inbox.messages)
        restarted = spawn("notify", service.port, *env)
        await asyncio.to_thread(restarted.start)
        await eventually(
            lambda: _accepted(inbox),
            lambda n: n >= CUSTOMERS,
            timeout=90,
            explain=lambda: _unsent(db, scope, restarted.log_path),
        )
        await asyncio.sleep(4)  # past another lease: a duplicate would arrive now
        sent_rows = await _count_rows(db, scope, "sent")
    finally:
        await producer.stop()
        await db.close()
        inbox.stop()

    by_message_id = Counter(m.message_id for m in inbox.messages)
    assert accepted_before_restart == KILL_AFTER
    assert in_flight >= 1
    assert len(by_message_id) == CUSTOMERS
    assert set(by_message_id.values()) == {1}
    assert sent_rows == CUSTOMERS


async def _unsent(db: asyncpg.Connection, scope: str, log_path: Path | None) -> str:
    """The scope's rows by status, those not sent in detail, and the service's last warnings."""
    rows = await db.fetch(
        """SELECT customer_id, status, attempts, due_at, lease_until
           FROM notify.scheduled WHERE customer_id LIKE $1""",
        f"{scope}%",
    )
    statuses = Counter(r["status"] for r in rows)
    unsent = [
        (
            r["customer_id"][-2:],
            r["status"],
            r["attempts"],
            r["due_at"].isoformat(),
            r["lease_until"] and r["lease_until"].isoformat(),
        )
        for r in rows
        if r["status"] != "sent"
    ]
    warnings = await asyncio.to_thread(_loud_lines, log_path)
    return f"rows {dict(statuses)}; unsent {unsent}; last warnings {warnings[-6:]}"


def _loud_lines(log_path: Path | None) -> list[str]:
    if log_path is None or not log_path.exists():
        return []
    lines = log_path.read_text(errors="replace").splitlines()
    return [line[:300] for line in lines if '"level": "warning"' in line or '"error"' in line]


async def _accepted(inbox: SmtpInbox) -> int:
    with inbox.lock:
        return len(inbox.messages)
