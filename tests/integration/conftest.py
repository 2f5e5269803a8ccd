"""An earn service running in the test process against the real broker and database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from support import start_group_at_end, unique

from services.earn.bootstrap import bootstrap as earn_bootstrap
from services.earn.settings import EarnSettings
from shared.infrastructure import Endpoints
from shared.runtime import Runtime, consumer_group

# The session's own consumer groups, started at the topics' ends: its services see only what
# its tests publish, whatever earlier runs or concurrent sessions left in the topics.
GROUP_PREFIX = unique("test")


def earn_settings(infrastructure: Endpoints) -> EarnSettings:
    return EarnSettings(
        consumer_group_prefix=GROUP_PREFIX,
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
    )


@pytest.fixture(scope="session")
async def earn(infrastructure: Endpoints) -> AsyncIterator[Runtime]:
    """The earn service, started once for the session; tests isolate by unique customer ids."""
    settings = earn_settings(infrastructure)
    app, runtime = earn_bootstrap(settings)
    await start_group_at_end(
        settings.kafka_bootstrap_servers,
        consumer_group(settings, "earn"),
        list(runtime.definition.handlers),
    )
    await app.start()
    try:
        yield runtime
    finally:
        await app.stop()


@pytest.fixture(scope="session")
async def db(infrastructure: Endpoints) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(infrastructure.database_url, min_size=1, max_size=4)
    assert pool is not None
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def producer(infrastructure: Endpoints) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()
