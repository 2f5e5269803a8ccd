"""Staff mail from the console by real SMTP, Kafka and PostgreSQL: an invitation arrives once
with its link in the chosen language, a redelivered event sends nothing more, a test send is
marked "[TEST]" and holds sample data, and an event of an unknown kind is dead-lettered while
the partition goes on."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from console_support import ConsoleService, console_service, csrf_of, signed_in
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import NOTIFY_SCOPE, Captured, RunDue, SmtpInbox
from prometheus_client import REGISTRY
from support import TopicTail, encoded, eventually, unique

from services.console.domain.roles import Role
from services.notify.adapters.email import staff_message_id
from services.notify.bootstrap import make_worker
from services.notify.settings import NotifySettings
from shared.clock import FixedClock
from shared.events import make_event
from shared.events.console import MessageTestRequested, StaffInvited
from shared.runtime import Runtime


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure) as service:
        yield service


def scoped_shop() -> str:
    """A shop whose staff mail this session's worker sends (LOYALTY_STAFF_MAIL_SCOPE)."""
    return unique(NOTIFY_SCOPE)


@contextlib.asynccontextmanager
async def staff_browser(
    console: ConsoleService, shop: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    """A browser signed in as a new owner of the shop: the client, its CSRF token, its email."""
    owner = await console.make_user({shop: Role.OWNER}, locale="en")
    async with console.client() as client:
        await signed_in(client, owner)
        token = csrf_of((await client.get(f"/shops/{shop}/staff")).text)
        yield client, token, owner.email


async def console_event(infrastructure: Endpoints, shop: str, post: Any) -> Any:
    """Run `post` (a console request answering 303); the record it put on loyalty.console."""
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.console") as tail:
        answer = await post()
        assert answer.status_code == 303, answer.text
        [record] = await tail.collect(lambda r: r.key == shop.encode(), count=1)
    return record


async def staff_rows(db: asyncpg.Pool, shop: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM notify.staff_mail WHERE shop_id = $1 ORDER BY created_at, event_id", shop
    )


def invitations_sent() -> float:
    labels = {"service": "notify", "trigger": "staff_invitation", "channel": "email"}
    found = REGISTRY.get_sample_value("loyalty_notifications_total", labels | {"outcome": "sent"})
    return found or 0.0


async def backlog_gauges(
    notify: tuple[AsgiFastStream, Runtime], settings: NotifySettings, shop: str, at: datetime
) -> dict[str, tuple[float | None, float | None]]:
    """Each queue's (due, oldest overdue seconds) gauges as a worker of the shop sets them."""
    scoped = settings.model_copy(update={"worker_scope": shop, "staff_mail_scope": shop})
    worker = make_worker(notify[1].require_pool(), scoped, FixedClock(at))
    try:
        await worker.measure()
    finally:
        for channel in worker.deliverer.channels.values():
            await channel.close()
    return {
        queue: (
            REGISTRY.get_sample_value("loyalty_scheduler_backlog", labels),
            REGISTRY.get_sample_value("loyalty_scheduler_oldest_due_age_seconds", labels),
        )
        for queue in ("scheduled", "staff_mail")
        for labels in [{"service": "notify", "queue": queue}]
    }


def soon() -> datetime:
    """A worker pass just after now: the console's events are due when notify keeps them."""
    return datetime.now(UTC) + timedelta(seconds=5)


def requested_test(shop: str, to_email: str, template: str = "welcome") -> Any:
    data = MessageTestRequested(
        shop_id=shop,
        request_id=unique("tst"),
        template=template,
        locale="en",
        to_email=to_email,
        requested_by="u_test",
    )
    return make_event("message.test_requested", source="tests/console", subject=shop, data=data)


async def test_an_invitation_arrives_once_with_its_link_in_the_chosen_language(
    console: ConsoleService,
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    shop = scoped_shop()
    invitee = f"{unique('invitee')}@mail.example"
    counted_before = invitations_sent()
    with structlog.testing.capture_logs() as logs:
        async with staff_browser(console, shop) as (client, token, owner_email):
            form = {"csrf_token": token, "email": invitee, "role": "marketer", "language": "vi"}
            record = await console_event(
                infrastructure,
                shop,
                lambda: client.post(f"/shops/{shop}/staff/invitations", data=form),
            )
        event = json.loads(record.value)
        await eventually(lambda: staff_rows(db, shop), lambda rows: len(rows) == 1)
        first = await run_due(soon())
        # The same record again (a redelivery), then a test send behind it on its partition.
        await producer.send_and_wait(
            "loyalty.console", record.value, key=record.key, headers=list(record.headers)
        )
        marker = requested_test(shop, owner_email)
        await producer.send_and_wait("loyalty.console", encoded(marker), key=shop.encode())
        await eventually(lambda: staff_rows(db, shop), lambda rows: len(rows) == 2)
        second = await run_due(soon())
    link = event["data"]["accept_url"]
    [mail] = smtp.to(invitee)
    rows = {r["event_id"]: r for r in await staff_rows(db, shop)}
    text, html = mail.part("plain"), mail.part("html")

    assert first["staff_sent"] == 1
    assert second["staff_sent"] == 1  # the marker only: the invitation is not sent again
    assert invitations_sent() == counted_before + 1
    assert len(smtp.to(owner_email)) == 1
    assert mail.message["Subject"] == (
        f"Staff Member mời bạn vào trang quản trị khách hàng thân thiết của {shop}"
    )
    assert mail.message["Content-Language"] == "vi"
    assert f"Nhận lời mời: {link}" in text
    assert "vai trò Tiếp thị" in text
    assert f'href="{link}"' in html
    assert '<html lang="vi">' in html
    assert mail.message_id == staff_message_id(event["id"], "Loyalty Shop <loyalty@shop.example>")
    assert mail.message["List-Unsubscribe"] is None  # staff mail is not a mailing
    assert rows[event["id"]]["status"] == "sent"
    assert "accept_url" not in json.loads(rows[event["id"]]["payload"])
    secret = link.rsplit("/", 1)[1]
    assert logs, "the flow logs"
    assert not [entry for entry in logs if secret in repr(entry)]
    assert not [entry for entry in logs if invitee in repr(entry)]


async def test_a_test_send_arrives_marked_test_with_sample_data(
    console: ConsoleService,
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    infrastructure: Endpoints,
) -> None:
    shop = scoped_shop()
    async with staff_browser(console, shop) as (client, token, email):
        form = {"csrf_token": token, "language": "en"}
        await console_event(
            infrastructure,
            shop,
            lambda: client.post(f"/shops/{shop}/messages/cart_reminder/test-send", data=form),
        )
    await eventually(lambda: staff_rows(db, shop), lambda rows: len(rows) == 1)
    outcomes = await run_due(soon())
    [mail] = smtp.to(email)
    text = mail.part("plain")

    assert outcomes["staff_sent"] == 1
    assert mail.message["Subject"].startswith("[TEST] ")
    assert mail.message["Content-Language"] == "en"
    assert "Nguyễn Văn An" in text  # the sample customer
    assert "Chén sứ men lam" in text  # the sample cart
    assert "https://shop.example/cart/abc" in text
    assert (await staff_rows(db, shop))[0]["kind"] == "test_send"


async def test_an_event_of_an_unknown_kind_is_dead_lettered_and_the_partition_goes_on(
    notify: tuple[AsgiFastStream, Runtime],
    run_due: RunDue,
    smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    shop = scoped_shop()
    email = f"{unique('staff')}@mail.example"
    after = requested_test(shop, email)
    unknown = json.loads(encoded(after))
    unknown |= {"id": unique("evt"), "type": "staff.promoted"}
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.console.dlq") as dlq:
        await producer.send_and_wait(
            "loyalty.console",
            json.dumps(unknown).encode(),
            key=shop.encode(),
        )
        await producer.send_and_wait("loyalty.console", encoded(after), key=shop.encode())
        [dead] = await dlq.collect(lambda r: r.key == shop.encode(), count=1)
    await eventually(lambda: staff_rows(db, shop), lambda rows: len(rows) == 1)
    outcomes = await run_due(soon())
    headers = {k: v.decode() for k, v in dead.headers}

    assert headers["x-dlq-service"] == "notify"
    assert "staff.promoted" in headers["x-dlq-error-message"]
    assert json.loads(dead.value)["id"] == unknown["id"]
    assert [r["event_id"] for r in await staff_rows(db, shop)] == [after.id]
    assert outcomes["staff_sent"] == 1
    assert len(smtp.to(email)) == 1


async def test_an_invitation_whose_link_leads_elsewhere_is_dead_lettered_unsent(
    notify: tuple[AsgiFastStream, Runtime],
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
    infrastructure: Endpoints,
) -> None:
    shop = scoped_shop()
    data = {
        "shop_id": shop,
        "shop_name": "Thời trang",
        "invitation_id": unique("inv"),
        "email": "someone@mail.example",
        "role": "owner",
        "locale": "en",
        "invited_by_name": "Mallory",
        "accept_url": "https://phish.example/invitations/" + "a" * 43,
        "expires_at": (datetime.now(UTC) + timedelta(hours=72)).isoformat(),
    }
    event = make_event(
        "staff.invited",
        source="tests/console",
        subject=shop,
        data=StaffInvited.model_validate(data),
    )
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.console.dlq") as dlq:
        await producer.send_and_wait("loyalty.console", encoded(event), key=shop.encode())
        [dead] = await dlq.collect(lambda r: r.key == shop.encode(), count=1)
    headers = {k: v.decode() for k, v in dead.headers}

    assert headers["x-dlq-error-class"] == "ForeignInvitationLink"
    assert "LOYALTY_CONSOLE_PUBLIC_URL" in headers["x-dlq-error-message"]
    assert "phish" not in headers["x-dlq-error-message"]
    assert await staff_rows(db, shop) == []


@pytest.fixture
def moody_smtp() -> Iterator[SmtpInbox]:
    """An SMTP server of the test's own: 451 to the first message, 550 to `refused@`."""
    tries: list[Captured] = []

    def accept(message: Captured) -> bool:
        tries.append(message)
        return len(tries) > 1

    inbox = SmtpInbox(
        before_accept=accept, refuse_rcpt=lambda address: address.startswith("refused@")
    ).start()
    try:
        yield inbox
    finally:
        inbox.stop()


async def test_staff_mail_refused_for_now_is_sent_later_and_refused_for_good_is_failed(
    notify: tuple[AsgiFastStream, Runtime],
    notify_settings: NotifySettings,
    run_due: RunDue,
    moody_smtp: SmtpInbox,
    db: asyncpg.Pool,
    producer: AIOKafkaProducer,
) -> None:
    shop = scoped_shop()
    later = requested_test(shop, f"{unique('staff')}@mail.example")
    never = requested_test(shop, "refused@mail.example")
    for event in (later, never):
        await producer.send_and_wait("loyalty.console", encoded(event), key=shop.encode())
    await eventually(lambda: staff_rows(db, shop), lambda rows: len(rows) == 2)
    settings = notify_settings.model_copy(update={"smtp_port": moody_smtp.port})
    at = soon()
    oldest = min(r["due_at"] for r in await staff_rows(db, shop))
    retry_at = at + timedelta(seconds=settings.retry_base_s)

    stuck = await backlog_gauges(notify, settings, shop, at)
    first = await run_due(at, settings)
    waiting = {r["event_id"]: r for r in await staff_rows(db, shop)}
    retry_due = await backlog_gauges(notify, settings, shop, retry_at)
    second = await run_due(retry_at, settings)
    drained = await backlog_gauges(notify, settings, shop, retry_at)
    rows = {r["event_id"]: r for r in await staff_rows(db, shop)}

    # Staff mail waiting shows in its own queue's gauges; the failed one is not counted.
    assert stuck == {"scheduled": (0, 0), "staff_mail": (2, (at - oldest).total_seconds())}
    assert retry_due["staff_mail"] == (1, 0)
    assert drained["staff_mail"] == (0, 0)
    assert (first["staff_retry"], first["staff_failed"]) == (1, 1)
    assert waiting[later.id]["status"] == "pending"
    assert waiting[later.id]["due_at"] == at + timedelta(seconds=settings.retry_base_s)
    assert "451" in waiting[later.id]["error"]
    assert second["staff_sent"] == 1
    assert second["staff_failed"] == 0  # failed for good: not tried again
    assert [m.message_id for m in moody_smtp.to(later.data.to_email)] == [
        staff_message_id(later.id, "Loyalty Shop <loyalty@shop.example>")
    ]
    assert (rows[later.id]["status"], rows[later.id]["attempts"]) == ("sent", 2)
    assert rows[never.id]["status"] == "failed"
    assert "550" in rows[never.id]["error"]
    assert "refused@" not in rows[never.id]["error"]
