"""`loyalty notify run-due --at` and `loyalty notify preview`, run the way an operator runs them."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from notify_support import SmtpInbox, signed_up
from support import TopicTail, encoded, eventually, loyalty_command, unique

from services.notify.domain.messages import TEMPLATES
from services.notify.staff_mail import STAFF_TEMPLATES

T0 = datetime(2031, 11, 2, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City


def loyalty(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return loyalty_command(*args, env=env or {}, timeout=120)


async def test_run_due_at_a_given_time_sends_what_is_due_and_publishes_the_outcome(
    infrastructure: Endpoints, spawn: type
) -> None:
    scope = unique("e2e-cmd")
    inbox = SmtpInbox().start()
    env = {
        "LOYALTY_SMTP_PORT": str(inbox.port),
        "LOYALTY_UNSUBSCRIBE_SECRET": "c" * 40,
        "LOYALTY_WORKER_SCOPE": scope,
        # Its run-due passes send no other session's staff mail.
        "LOYALTY_STAFF_MAIL_SCOPE": scope,
    }
    service = spawn("notify", None, *env.items(), ("LOYALTY_WORKER_ENABLED", "false"))
    db = await asyncpg.connect(infrastructure.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    customer = f"{scope}-1"
    try:
        await asyncio.to_thread(service.start)
        event = signed_up(customer, T0, email=f"{customer}@mail.example", locale="en-US")
        await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
        await eventually(
            lambda: db.fetchval(
                "SELECT count(*) FROM notify.scheduled WHERE customer_id = $1", customer
            ),
            lambda n: n == 1,
        )
        async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.notifications") as tail:
            early = await asyncio.to_thread(
                loyalty,
                "notify",
                "run-due",
                "--at",
                (T0 - timedelta(minutes=1)).isoformat(),
                env=env,
            )
            due = await asyncio.to_thread(
                loyalty,
                "notify",
                "run-due",
                "--at",
                (T0 + timedelta(minutes=1)).isoformat(),
                env=env,
            )
            published = await tail.collect(lambda r: r.key == customer.encode(), count=1)
    finally:
        await producer.stop()
        await db.close()
        inbox.stop()

    assert early.returncode == 0, early.stderr[-2000:]
    assert "nothing due" in early.stdout
    assert due.returncode == 0, due.stderr[-2000:]
    assert "sent=1" in due.stdout
    assert [m.message["Subject"] for m in inbox.to(f"{customer}@mail.example")] == [
        "Welcome, Nguyễn Văn An!"
    ]
    assert json.loads(published[0].value)["type"] == "notification.sent"


def test_preview_writes_every_part_of_every_template_in_vi_and_en(tmp_path: Path) -> None:
    results = [
        loyalty("notify", "preview", "all", "--locale", locale, "--out", str(tmp_path))
        for locale in ("vi-VN", "en-US")
    ]

    for result in results:
        assert result.returncode == 0, result.stderr[-2000:]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"{template}.{locale}.{part}"
        for template in (*TEMPLATES, *STAFF_TEMPLATES)
        for locale in ("vi-VN", "en-US")
        for part in ("html", "push.json", "subject.txt", "txt")
    )
    assert "1.234.567\xa0₫" in (tmp_path / "cart_reminder.vi-VN.txt").read_text()
    assert "Nhận lời mời" in (tmp_path / "staff_invitation.vi-VN.txt").read_text()
    assert "Accept the invitation" in (tmp_path / "staff_invitation.en-US.txt").read_text()
