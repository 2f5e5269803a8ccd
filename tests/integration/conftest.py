"""Earn and tiering services running in the test process against the real broker and database."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from analytics_support import ANALYTICS_KEY, analytics_settings
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import (
    NOTIFY_API_KEY,
    NOTIFY_SCOPE,
    PushReceiver,
    RunDue,
    SmtpInbox,
    vapid_private_key,
)
from pydantic import SecretStr
from release_support import release_database as restored_release
from support import own_groups, running, unique
from tiering_tools import OPERATOR, TieringService, tiering_settings

from services.analytics.bootstrap import bootstrap as analytics_bootstrap
from services.earn.bootstrap import bootstrap as earn_bootstrap
from services.earn.settings import EarnSettings
from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.notify.bootstrap import make_worker
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from services.tiering.bootstrap import MIGRATIONS as TIERING_MIGRATIONS
from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from shared.clock import FixedClock
from shared.db import apply_migrations
from shared.holders import Holders
from shared.runtime import MESSAGING_MIGRATIONS, Runtime


def earn_settings(infrastructure: Endpoints) -> EarnSettings:
    return EarnSettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
    )


@pytest.fixture(scope="module")
async def earn(infrastructure: Endpoints) -> AsyncIterator[Runtime]:
    """The earn service with the shipped programme, for the module; tests isolate by unique
    customer ids. Not for the session: modules that run an earn with a programme of their own
    (in a database of their own) must not see this one's points.earned for their orders."""
    app, runtime = earn_bootstrap(earn_settings(infrastructure))
    async with running(app, runtime):
        yield runtime


@pytest.fixture(scope="module")
async def tiering(infrastructure: Endpoints) -> AsyncIterator[TieringService]:
    """The tiering service with the shipped programme (VND, rolling 365 days), for the module:
    a module's tests never wait behind what earlier modules left for the service to do."""
    app, runtime = tiering_bootstrap(tiering_settings(infrastructure))
    transport = httpx.ASGITransport(app=app)
    async with (
        running(app, runtime),
        httpx.AsyncClient(transport=transport, base_url="http://tiering", headers=OPERATOR) as api,
    ):
        yield TieringService(runtime, api)


@pytest.fixture(scope="session")
async def db(infrastructure: Endpoints) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infrastructure.database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def tiering_schema(db: asyncpg.Pool) -> AsyncIterator[str]:
    """A tiering schema of the test's own, for calling its handlers; dropped afterwards."""
    name = unique("tiering").replace("-", "_")
    async with db.acquire() as conn:
        await apply_migrations(
            conn, name, [("messaging", MESSAGING_MIGRATIONS), ("tiering", TIERING_MIGRATIONS)]
        )
    try:
        yield name
    finally:
        await db.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture(scope="session")
async def producer(infrastructure: Endpoints) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


# --- notify: a real SMTP server, a decrypting push receiver, the service without its worker ---


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox().start()
    try:
        yield inbox
    finally:
        inbox.stop()


@pytest.fixture(scope="session")
async def push_receiver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PushReceiver]:
    receiver = await PushReceiver(tmp_path_factory.mktemp("push")).start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@pytest.fixture(scope="session")
def notify_settings(
    infrastructure: Endpoints, smtp: SmtpInbox, push_receiver: PushReceiver
) -> NotifySettings:
    return NotifySettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
        smtp_port=smtp.port,
        mail_from="Loyalty Shop <loyalty@shop.example>",
        vapid_private_key=SecretStr(vapid_private_key()),
        vapid_subject="mailto:ops@shop.example",
        push_ca_file=push_receiver.cert_path,
        public_base_url="https://notify.shop.example",
        unsubscribe_secret=SecretStr("s" * 40),
        notify_api_key=SecretStr(NOTIFY_API_KEY),
        worker_enabled=False,  # tests send with explicit times through run_due
        worker_scope=NOTIFY_SCOPE,
        staff_mail_scope=NOTIFY_SCOPE,  # staff mail of this session's shops only
    )


@pytest.fixture(scope="module")
async def notify(notify_settings: NotifySettings) -> AsyncIterator[tuple[AsgiFastStream, Runtime]]:
    """The notify service (consumers, relay, HTTP API), started for the module."""
    settings = notify_settings.model_copy(update={"consumer_group_prefix": own_groups()})
    app, runtime = notify_bootstrap(settings)
    async with running(app, runtime):
        yield app, runtime


@pytest.fixture
def run_due(notify: tuple[AsgiFastStream, Runtime], notify_settings: NotifySettings) -> RunDue:
    """One worker pass at an explicit time, as `loyalty notify run-due --at` does."""
    runtime = notify[1]

    async def run(
        at: datetime,
        settings: NotifySettings | None = None,
        shops: ShopMessageSettings | None = None,
        holders: Holders | None = None,
    ) -> Counter[str]:
        relay = runtime.relay
        worker = make_worker(
            runtime.require_pool(),
            settings or notify_settings,
            FixedClock(at),
            relay.wake if relay is not None else lambda: None,
            shops,
            holders=holders,
        )
        try:
            return await worker.run_due(at)
        finally:
            for channel in worker.deliverer.channels.values():
                await channel.close()

    return run


# --- analytics: the service and a client of its HTTP API ---


@pytest.fixture(scope="module")
async def analytics(infrastructure: Endpoints) -> AsyncIterator[httpx.AsyncClient]:
    """The analytics service for the module; tests isolate by a shop of their own. The
    client sends the configured platform key, which may ask for any shop's report."""
    app, runtime = analytics_bootstrap(analytics_settings(infrastructure))
    transport = httpx.ASGITransport(app=app)
    async with (
        running(app, runtime),
        httpx.AsyncClient(
            transport=transport,
            base_url="http://analytics",
            headers={"X-API-Key": ANALYTICS_KEY},
        ) as api,
    ):
        yield api


@pytest.fixture
async def release_database(infrastructure: Endpoints) -> AsyncIterator[str]:
    """The URL of a database holding what the previous release left (tests/release_support.py),
    not migrated since; dropped after."""
    async with restored_release(infrastructure) as url:
        yield url
