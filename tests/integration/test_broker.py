"""How a service process joins its consumer groups, on the real broker."""

from __future__ import annotations

import time
from collections.abc import Sequence

from faststream.kafka import KafkaBroker
from infrastructure import Endpoints
from support import unique

from shared.broker import HEARTBEAT_INTERVAL_MS, make_broker, subscribe_batches
from shared.clock import SystemClock
from shared.consumer import BatchConsumer, Incoming, Rejection
from shared.db import Connection
from shared.settings import CommonSettings
from shared.topics import ensure_topics

TOPICS_PER_REPLICA = 8


async def _nothing(_conn: Connection, _events: Sequence[Incoming]) -> list[Rejection]:
    return []


def _replica(settings: CommonSettings, topics: Sequence[str]) -> KafkaBroker:
    """A service process's broker with one batch subscriber per topic (none of them consumes
    anything: the topics stay empty)."""
    broker = make_broker(settings, "test")
    for topic in topics:
        consumer = BatchConsumer(
            service="test", schema="unused", topic=topic, handler=_nothing, clock=SystemClock()
        )
        subscribe_batches(
            broker,
            consumer,
            group_id=f"{settings.consumer_group_prefix}-test.{topic}",
            max_records=10,
            batch_timeout_ms=10,
        )
    return broker


async def test_a_second_replica_joins_every_group_in_about_one_rebalance(
    infrastructure: Endpoints,
) -> None:
    """Each of the second replica's groups has a member already, so each join is a rebalance
    that waits up to a heartbeat interval for that member to rejoin. Joined one after another,
    the eight groups took 4.0 s here (one rebalance after another), during which the first
    replica consumed the later topics alone; at once, about one second."""
    topics = [unique("tests.joins") for _ in range(TOPICS_PER_REPLICA)]
    await ensure_topics(infrastructure.kafka_bootstrap, topics, partitions=2)
    settings = CommonSettings(
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        consumer_group_prefix=unique("joins"),
    )
    first, second = _replica(settings, topics), _replica(settings, topics)
    await first.start()
    try:
        started = time.monotonic()
        await second.start()
        joined_in = time.monotonic() - started
    finally:
        await second.stop()
        await first.stop()

    heartbeat_s = HEARTBEAT_INTERVAL_MS / 1000
    assert joined_in < 3 * heartbeat_s, f"joined {len(topics)} groups in {joined_in:.1f} s"
