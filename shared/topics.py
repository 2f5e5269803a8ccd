"""Topic names, and creating them (with their dead-letter topics) before anything consumes."""

from __future__ import annotations

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = structlog.get_logger(__name__)

INPUT_TOPICS = ("shop.customers", "shop.orders", "shop.carts", "shop.engagement")
OUTPUT_TOPICS = (
    "loyalty.points",
    "loyalty.tiers",
    "loyalty.memberships",
    "loyalty.notifications",
)
ALL_TOPICS = INPUT_TOPICS + OUTPUT_TOPICS


def dlq(topic: str) -> str:
    return f"{topic}.dlq"


async def ensure_topics(bootstrap: str, names: list[str], *, partitions: int) -> list[str]:
    """Create the topics that do not exist yet; returns those created. Safe to run concurrently."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            result = await admin.create_topics(
                [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
            )
            # TOPIC_ALREADY_EXISTS (36) means another replica was quicker: not an error.
            failed = [(t, c) for t, c, *_ in result.topic_errors if c not in (0, 36)]
            if failed:
                raise RuntimeError(f"could not create topics: {failed}")
            log.info("topics_created", topics=missing, partitions=partitions)
        return missing
    finally:
        await admin.close()


def topics_with_dlq(names: tuple[str, ...]) -> list[str]:
    return [t for name in names for t in (name, dlq(name))]
