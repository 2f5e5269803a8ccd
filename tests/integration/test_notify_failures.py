"""Bad input gives a clear, logged outcome and never holds up other customers' messages."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from faststream.asgi import AsgiFastStream
from notify_support import RunDue, SmtpInbox, notify_customer, signed_up
from support import encoded, eventually

from services.notify.bootstrap import make_channels
from services.notify.delivery import Deliverer
from services.notify.rendering import TEMPLATES_DIR, Renderer
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from services.notify.worker import Worker
from shared.clock import FixedClock
from shared.runtime import Runtime

T0 = datetime(2031, 7, 1, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City


async def sign_up(producer: AIOKafkaProducer, db: asyncpg.Pool, customer: str, locale: str) -> None:
    event = signed_up(customer, T0, email=f"{customer}@mail.example", locale=locale)
    await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
    await eventually(
        lambda: db.fetch("SELECT 1 FROM notify.scheduled WHERE customer_id = $1", customer),
        lambda rows: len(rows) == 1,
    )


async def log_of(db: asyncpg.Pool, customer: str) -> list[tuple[str, str | None]]:
    rows = await db.fetch(
        "SELECT outcome, detail FROM notify.delivery_log WHERE customer_id = $1 ORDER BY id",
        customer,
    )
    return [(r["outcome"], r["detail"]) for r in rows]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_unreachable_smtp_server_is_retried_without_using_up_attempts_then_delivered(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
) -> None:
    customer = notify_customer()
    await sign_up(producer, db, customer, "vi-VN")
    down = notify_settings.model_copy(update={"smtp_port": closed_port(), "smtp_timeout_s": 2.0})

    first = await run_due(T0 + timedelta(minutes=1), down)
    row = await db.fetchrow("SELECT * FROM notify.scheduled WHERE customer_id = $1", customer)
    await run_due(T0 + timedelta(minutes=1, seconds=30))
    too_early = smtp.to(f"{customer}@mail.example")
    second = await run_due(T0 + timedelta(minutes=3))

    assert first["retry"] >= 1
    assert row is not None
    assert row["status"] == "pending"
    assert row["due_at"] == T0 + timedelta(minutes=2)  # retry_base_s=60 after the first try
    assert row["attempts"] == 0  # the server's outage is no fault of the message
    assert too_early == []
    assert second["sent"] >= 1
    assert len(smtp.to(f"{customer}@mail.example")) == 1
    log = await log_of(db, customer)
    assert log[0] == ("retry", "SMTP server unreachable: SMTPConnectError")
    assert log[-1] == ("sent", None)


async def test_unknown_template_variable_fails_that_message_and_the_others_still_go(
    notify: tuple[AsgiFastStream, Runtime],
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    notify_settings: NotifySettings,
    tmp_path: Path,
) -> None:
    broken, fine = notify_customer(), notify_customer()
    await sign_up(producer, db, broken, "en-US")
    await sign_up(producer, db, fine, "vi-VN")
    templates = tmp_path / "templates"
    for language in ("en", "vi"):
        (templates / language).mkdir(parents=True)
        for source in (TEMPLATES_DIR / language).iterdir():
            (templates / language / source.name).write_text(source.read_text())
    welcome = templates / "en" / "welcome.txt"
    welcome.write_text(welcome.read_text().replace("{{ name }}", "{{ nickname }}", 1))
    at = T0 + timedelta(minutes=1)
    runtime = notify[1]
    deliverer = Deliverer(
        settings=notify_settings,
        shops=ShopMessageSettings.from_settings(notify_settings, Renderer(templates)),
        channels=make_channels(notify_settings, FixedClock(at)),
        secret=notify_settings.require_secrets(),
    )
    worker = Worker(pool=runtime.require_pool(), clock=FixedClock(at), deliverer=deliverer)
    try:
        outcome = await worker.run_due(at)
    finally:
        for channel in deliverer.channels.values():
            await channel.close()

    assert outcome["failed"] >= 1
    assert outcome["sent"] >= 1
    assert smtp.to(f"{broken}@mail.example") == []
    assert len(smtp.to(f"{fine}@mail.example")) == 1
    [(outcome_name, detail)] = await log_of(db, broken)
    assert outcome_name == "failed"
    assert detail == "template: en/welcome: UndefinedError: 'nickname' is undefined"
